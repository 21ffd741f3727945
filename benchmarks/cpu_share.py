"""Where a serving machine's CPU goes: per-component CPU seconds between two snapshots.

    before = snapshot(); ...load...; share = cores(before, snapshot())

Reads /proc (Linux): every process's user + system time (all its threads), grouped by what
it is in a latte deployment. The engines' share against everything else is the split that
decides how far a router can cut a request's cost by choosing a cheaper strategy: the
engine work shrinks with the strategy, the per-request work of the proxy, router and pool
front ends does not.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")

# (component, prefix of the process title); the first match wins
_TITLES = (("router", "ray::ServeReplica:latte:Router"), ("policy_pool", "ray::ServeReplica:latte:PolicyPool"),
           ("prm_pool", "ray::ServeReplica:latte:PRMPool"), ("proxy", "ray::ProxyActor"),
           ("serve_controller", "ray::ServeController"))
COMPONENTS = ("policy_engine", "prm_engine", "policy_pool", "prm_pool", "router", "proxy", "client",
              "serve_controller", "ray_other")


def _read(pid: str) -> tuple[str, int, float] | None:
    """(title, parent pid, CPU seconds) of a process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return title, int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def snapshot() -> dict:
    """{"t": monotonic seconds, "procs": {pid: (title, ppid, cpu_s)}}."""
    procs = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and (row := _read(p.name)) is not None:
            procs[int(p.name)] = row
    return {"t": time.monotonic(), "procs": procs}


def component(pid: int, procs: dict, client_pid: int) -> str | None:
    """Which part of the deployment a process is; None for what is not ours or Ray's."""
    title, ppid, _ = procs[pid]
    if pid == client_pid:
        return "client"
    if title.startswith("VLLM::EngineCore"):  # its parent is the pool replica that owns it
        parent = procs.get(ppid, ("", 0, 0.0))[0]
        return "prm_engine" if "PRMPool" in parent else "policy_engine"
    for name, prefix in _TITLES:
        if title.startswith(prefix):
            return name
    if title.startswith("ray::") or "/ray/" in title or "raylet" in title or "gcs_server" in title:
        return "ray_other"
    return None


def cores(before: dict, after: dict, client_pid: int | None = None) -> dict[str, float]:
    """Mean cores each component used between the snapshots (a process that started in
    between counts from zero; one that ended is lost, which undercounts only its last part)."""
    client_pid = os.getpid() if client_pid is None else client_pid
    dt = max(1e-9, after["t"] - before["t"])
    out = {c: 0.0 for c in COMPONENTS}
    for pid, (title, ppid, cpu) in after["procs"].items():
        name = component(pid, after["procs"], client_pid)
        if name is None:
            continue
        prev = before["procs"].get(pid)  # titles change (a Ray worker retitles per task): match by pid
        out[name] += max(0.0, cpu - (prev[2] if prev is not None else 0.0)) / dt
    return {k: round(v, 4) for k, v in out.items()}


def summary(share: dict[str, float], requests: int, seconds: float) -> dict:
    """Cores by component, the engines' part of the total, and CPU milliseconds per request."""
    total = sum(share.values())
    engines = share["policy_engine"] + share["prm_engine"]
    per = 1000.0 * seconds / max(1, requests)
    return {"cores": share, "total_cores": round(total, 3), "engine_fraction": round(engines / total, 3) if total else None,
            "cpu_ms_per_request": round(total * per, 2), "engine_ms_per_request": round(engines * per, 2),
            "other_ms_per_request": round((total - engines) * per, 2)}
