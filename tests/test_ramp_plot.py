"""benchmarks/ramp_plot.py draws a serve_load ramp, with and without the CPU split."""

from benchmarks.ramp_plot import plot


def _row(mult, p95, acc, cpu=True):
    r = {"load_multiple": mult, "p95_s": p95, "accuracy": acc}
    if cpu:
        r["cpu"] = {"cores": {"policy_engine": 0.7, "prm_engine": 0.1, "policy_pool": 0.2, "prm_pool": 0.05,
                              "router": 0.4, "proxy": 0.15, "client": 0.05, "serve_controller": 0.03,
                              "ray_other": 0.05}, "cpu_ms_per_request": 60.0}
    return r


def test_plot_writes_a_png_with_and_without_cpu(tmp_path):
    from PIL import Image

    ramp = {"a_load_aware": [_row(0.5, 0.9, 0.9), _row(2.0, 1.8, 0.6)],
            "b_load_awareness_off": [_row(0.5, 1.2, 0.9, cpu=False), _row(2.0, 3.5, 0.4, cpu=False)]}
    result = {"ramp": ramp, "slo_p95_s": 2.0, "cpu_count": 2,
              "accuracy_bound_at_2x": {"all": {"ratio_bound": 0.88}, "cpu": {"all": {"ratio_bound": 0.7}}}}
    with_cpu = plot(result, tmp_path / "a" / "ramp.png")
    without = plot({"ramp": {"b_load_awareness_off": ramp["b_load_awareness_off"]}}, tmp_path / "b.png")
    for path in (with_cpu, without):
        w, h = Image.open(path).size
        assert w > 1000 and h > 300
