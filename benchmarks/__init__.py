

def deploy_and_wait(serve_config, app_args: dict, port: int, timeout_s: float = 900.0) -> None:
    """Deploy the app; on a busy machine engines may start after Serve's own 60 s wait,
    so keep waiting (up to `timeout_s`) for the application to be RUNNING."""
    import time

    from ray import serve

    from serve_app.deploy import deploy

    try:
        deploy(serve_config, app_args, http_port=port)
        return
    except TimeoutError:
        pass
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        app = serve.status().applications.get("latte")
        if app is not None and app.status == "RUNNING":
            return
        if app is not None and app.status == "DEPLOY_FAILED":
            raise RuntimeError(f"the latte app failed to deploy: {app.message}")
        time.sleep(5)
    raise TimeoutError(f"the latte app is not running after {timeout_s:.0f} s more")
