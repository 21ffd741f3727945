"""latte's Prometheus series, through Ray's metrics (`ray.util.metrics`).

Ray exports every process's metrics on each node's metrics export port
(`ray start --metrics-export-port=PORT`, or `ray.init(_metrics_export_port=PORT)`;
a random port otherwise, listed as `MetricsExportPort` in `ray.nodes()`), path
`/metrics`. Ray prefixes the names with `ray_` (a Counter gains `_total`).
"""

from __future__ import annotations

TOKEN_BUCKETS = [1, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768]
SECOND_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64]


class LatteMetrics:
    """Created once per router replica. Outside a Ray worker (unit tests) every method is a no-op."""

    def __init__(self):
        try:
            from ray.util.metrics import Counter, Gauge, Histogram

            self.requests = Counter("latte_requests", "requests served, by chosen strategy, stage and route",
                                    tag_keys=("strategy", "stage", "route"))
            self.decision_s = Histogram("latte_decision_seconds", "router decision time (embed + probe + argmax)",
                                        boundaries=SECOND_BUCKETS)
            self.tokens = Histogram("latte_request_tokens", "generated tokens per request: kind=predicted|observed",
                                    boundaries=TOKEN_BUCKETS, tag_keys=("strategy", "kind"))
            self.latency_s = Histogram("latte_request_latency_seconds",
                                       "strategy run seconds per request: kind=predicted|observed",
                                       boundaries=SECOND_BUCKETS, tag_keys=("strategy", "kind"))
            self.escalations = Counter("latte_escalations", "requests whose strategy escalated to stage 2",
                                       tag_keys=("strategy",))
            self.errors = Counter("latte_errors", "requests answered with an error, by status and type",
                                  tag_keys=("status", "type"))
            self.enabled = True
        except Exception:  # no Ray worker: metrics off
            self.enabled = False

    def served(self, route: str, strategy: str, stage: int | None, escalated: bool, predicted_tokens: float,
               tokens: int, predicted_latency_s: float, latency_s: float, decision_s: float) -> None:
        if not self.enabled:
            return
        self.requests.inc(tags={"strategy": strategy, "stage": str(stage or 1), "route": route})
        self.decision_s.observe(decision_s)
        self.tokens.observe(predicted_tokens, tags={"strategy": strategy, "kind": "predicted"})
        self.tokens.observe(tokens, tags={"strategy": strategy, "kind": "observed"})
        self.latency_s.observe(predicted_latency_s, tags={"strategy": strategy, "kind": "predicted"})
        self.latency_s.observe(latency_s, tags={"strategy": strategy, "kind": "observed"})
        if escalated:
            self.escalations.inc(tags={"strategy": strategy})

    def error(self, status: int, type_: str) -> None:
        if self.enabled:
            self.errors.inc(tags={"status": str(status), "type": type_})


_metrics: LatteMetrics | None = None


def get_metrics() -> LatteMetrics:
    """The process's one LatteMetrics (Ray metrics are registered once per process)."""
    global _metrics
    if _metrics is None:
        _metrics = LatteMetrics()
    return _metrics
