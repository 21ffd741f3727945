"""One error shape on every route: OpenAI's {"error": {message, type, param, code}}.

A domain error (`LatteError`), a validation error (422, as before), an HTTP error of
the framework (unknown route, wrong method) and anything unforeseen (500, never a hang)
all leave through here, and are counted in the `latte_errors` metric.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve_app.protocol import LatteError

logger = logging.getLogger("ray.serve")


def error_json(exc: LatteError) -> JSONResponse:
    from serve_app.metrics import get_metrics

    get_metrics().error(exc.status, exc.type)
    return JSONResponse(status_code=exc.status, content=exc.response().model_dump(), headers=exc.headers)


def _validation_error(exc: RequestValidationError) -> LatteError:
    # Only location and reason: FastAPI would echo the input, which may be NaN/inf and then
    # fail to serialize (a 500).
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) if loc and first.get("type") != "json_invalid" else None
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    where = f"{param}: " if param else ""
    return LatteError(422, f"{where}{first.get('msg', 'invalid request')}{more}", param=param,
                      code=first.get("type", "invalid_value"))


def install(api: FastAPI) -> None:
    """Register the handlers (before @serve.ingress captures the app)."""

    @api.exception_handler(LatteError)
    async def _latte(request: Request, exc: LatteError):
        return error_json(exc)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return error_json(_validation_error(exc))

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "route_not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return error_json(LatteError(exc.status_code, str(exc.detail), code=code))

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        logger.exception("unexpected error on %s", request.url.path)
        return error_json(LatteError(500, f"internal error: {type(exc).__name__}", type="server_error",
                                     code="internal_error"))
