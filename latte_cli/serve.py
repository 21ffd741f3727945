"""`latte serve`: deploy the Serve app on a local Ray cluster, or hot-reload its router config."""

from __future__ import annotations

from ttc.paths import CPU_SERVE_CONFIG


def cmd_serve(rest: list[str]) -> int:
    import argparse
    import time

    ap = argparse.ArgumentParser(prog="latte serve", description="serve the router over HTTP on a local Ray cluster")
    ap.add_argument("--config", default=CPU_SERVE_CONFIG, help="Serve config file")
    ap.add_argument("--router-config", help="router config (overrides the Serve config's app args)")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--reload", action="store_true",
                    help="apply --router-config to the app already running on this Ray cluster, in place "
                         "(no replica restarts), then exit")
    args = ap.parse_args(rest)
    import ray

    from serve_app.deploy import deploy, reload_router

    if args.reload:
        if not args.router_config:
            raise ValueError("--reload needs --router-config (e.g. the tuning job's router.yaml)")
        ray.init(address="auto")
        reload_router(args.config, args.router_config, http_port=args.port)
        print(f"router config {args.router_config} applied to the running app")
        return 0
    ray.init(ignore_reinit_error=True)
    data = deploy(args.config, {"router_config": args.router_config} if args.router_config else None, args.port)
    http = data.get("http_options", {})
    print(f"latte is serving on http://{http.get('host', '127.0.0.1')}:{http.get('port', 8000)}/ "
          "(POST /v1/solve, /v1/chat/completions; GET /v1/models, /v1/strategies, /healthz); Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
