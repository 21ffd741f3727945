

def deploy_and_wait(serve_config, app_args: dict, port: int, timeout_s: float = 900.0) -> None:
    """Deploy the app and wait (up to `timeout_s` after Serve's own 60 s) until it runs."""
    from serve_app.deploy import deploy

    deploy(serve_config, app_args, http_port=port, wait_s=timeout_s)
