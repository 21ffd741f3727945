

def add_label_table_args(ap) -> None:
    """--train / --val label tables (the demo's by default) and --recipe: what the benchmarks
    that judge on validation read."""
    from ttc.paths import CPU_RECIPE

    ap.add_argument("--train", default="runs/demo/labels/labels_train.parquet")
    ap.add_argument("--val", default="runs/demo/labels/labels_val.parquet")
    ap.add_argument("--recipe", default=CPU_RECIPE)


def deploy_and_wait(serve_config, app_args: dict, port: int, timeout_s: float = 900.0) -> None:
    """Deploy the app and wait (up to `timeout_s` after Serve's own 60 s) until it runs."""
    from serve_app.deploy import deploy

    deploy(serve_config, app_args, http_port=port, wait_s=timeout_s)


class LogsToStderr:
    """Send everything written to fd 1 (Ray, vLLM and their child processes) to stderr while
    a benchmark runs, so that its stdout carries only the JSON printed by `emit`."""

    def __enter__(self):
        import os
        import sys

        sys.stdout.flush()
        self._saved = os.dup(1)
        os.dup2(2, 1)
        return self

    def emit(self, text: str) -> None:
        import os

        os.write(self._saved, (text + "\n").encode())

    def __exit__(self, *exc):
        import os
        import sys

        sys.stdout.flush()
        os.dup2(self._saved, 1)
        os.close(self._saved)
        return False
