"""The pools' sliding-window throughput meter (what autoscaling and the router read)."""

from serve_app import pools


def test_meter_counts_only_the_window(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(pools.time, "monotonic", lambda: now[0])
    m = pools._LoadMeter(window_s=10.0)
    m.add(50.0)
    now[0] = 105.0
    m.add(30.0)
    assert m.rate() == 8.0  # (50 + 30) / 10
    now[0] = 110.5  # the first event is now 10.5 s old
    assert m.rate() == 3.0
    now[0] = 200.0
    assert m.rate() == 0.0 and not m.events
    m.add(20.0)
    assert m.rate() == 2.0
