"""A one-machine Ray cluster for `ray job submit` (`latte cluster up-local|status-local|down-local`).

    latte cluster up-local [--num-cpus N] [--port 6379] [--dashboard-port 8265] [--temp-dir DIR]
    latte cluster status-local [--temp-dir DIR]
    latte cluster down-local [--temp-dir DIR]

`up-local` runs `ray start --head --block` in its own process group, waits until the
Jobs API answers and records the cluster in DIR/latte_cluster.json. `down-local` stops
exactly that process group; it never runs `ray stop`, which would also kill every other
Ray cluster on the machine (other checkouts, test sessions).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_TEMP_DIR = "/tmp/latte-ray"  # short: Ray's unix socket paths live under it
STATE_FILE = "latte_cluster.json"
START_LOG = "latte_ray_start.log"
EXAMPLE_JOB = "python -m jobs.label --config cluster/jobs/label_cpu.yaml"


def ray_env(base: dict | None = None) -> dict:
    """Environment for `ray start` and `ray job submit`.

    Ray 2.60 turns token auth on for `ray start` as soon as ~/.ray/auth_token exists
    (any earlier `ray.init()` writes one); the job client would then need the token.
    An explicit RAY_AUTH_MODE keeps both sides in the same mode."""
    env = dict(os.environ if base is None else base)
    env.setdefault("RAY_AUTH_MODE", "disabled")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return env


def _ray_exe() -> str:
    beside = Path(sys.executable).with_name("ray")
    exe = str(beside) if beside.exists() else shutil.which("ray")
    if not exe:
        raise RuntimeError("the `ray` command is not installed in this environment")
    return exe


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:  # reap it if it is our own finished child, else it lingers as a zombie
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _is_our_ray(pid: int, temp_dir: str) -> bool:
    """Guards against a reused pid: the process must be the `ray start` of this temp dir."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in argv]
    return "start" in args and temp_dir in args


def _group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process in the group, read from /proc."""
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            state, _, group = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid:
            members.append((int(proc.name), state))
    return members


def _group_alive(pgid: int) -> bool:
    """A member of the group still runs. Zombies do not count: a killed worker whose parent
    died is reparented to init, and an init that does not reap (some containers' init) leaves
    it in the table, where `killpg(pgid, 0)` would still find it."""
    return any(state != "Z" for _, state in _group_members(pgid))


def _group_is_ours(pgid: int, temp_dir: str) -> bool:
    """Some live member of the group runs under this temp dir (GCS and raylet name it)."""
    for pid, state in _group_members(pgid):
        if state == "Z":
            continue
        try:
            if temp_dir in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                return True
        except OSError:
            continue
    return False


def _get_json(url: str, timeout: float = 3.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def read_state(temp_dir: str = DEFAULT_TEMP_DIR) -> dict | None:
    p = Path(temp_dir) / STATE_FILE
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def status(temp_dir: str = DEFAULT_TEMP_DIR) -> dict | None:
    """The recorded cluster with `running`, `ray_version` and job counts; None if none recorded."""
    state = read_state(temp_dir)
    if state is None:
        return None
    running = _alive(state["pid"]) and _is_our_ray(state["pid"], state["temp_dir"])
    info = {**state, "running": running, "jobs_api": False}
    if running:
        try:
            info["ray_version"] = _get_json(f"{state['address']}/api/version").get("ray_version")
            jobs = _get_json(f"{state['address']}/api/jobs/")
            counts: dict[str, int] = {}
            for job in jobs:
                counts[job.get("status", "?")] = counts.get(job.get("status", "?"), 0) + 1
            info.update(jobs_api=True, jobs=counts)
        except (OSError, ValueError, urllib.error.URLError):
            pass
    return info


def up(num_cpus: int | None = None, port: int = 6379, dashboard_port: int = 8265,
       temp_dir: str = DEFAULT_TEMP_DIR, timeout: float = 120.0, num_gpus: int | None = None,
       client_port: int | None = None, agent_port: int | None = None) -> dict:
    """Start the head node and return its recorded state once the Jobs API answers."""
    temp_dir = str(Path(temp_dir).resolve())
    current = status(temp_dir)
    if current and current["running"]:
        return current
    # Fixed defaults (10001, 52365) would collide with another cluster on this machine.
    client_port = client_port or dashboard_port + 1
    agent_port = agent_port or dashboard_port + 2
    busy = [p for p in (port, dashboard_port, client_port, agent_port) if not _port_free(p)]
    if busy:
        raise RuntimeError(f"port(s) {busy} are in use; pick others with --port / --dashboard-port")
    Path(temp_dir).mkdir(parents=True, exist_ok=True)
    log = Path(temp_dir) / START_LOG
    cmd = [_ray_exe(), "start", "--head", "--block", "--port", str(port),
           "--dashboard-port", str(dashboard_port), "--dashboard-host", "127.0.0.1",
           "--include-dashboard", "true",  # the Jobs API lives in the dashboard
           "--ray-client-server-port", str(client_port), "--dashboard-agent-listen-port", str(agent_port),
           "--temp-dir", temp_dir, "--disable-usage-stats"]
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    if num_gpus is not None:
        cmd += ["--num-gpus", str(num_gpus)]
    env = ray_env()
    # On SIGTERM a node first drains for up to 30 s (for Serve on multi-node clusters);
    # a one-machine cluster has nowhere to drain to, so down-local would only wait.
    env.setdefault("RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "0")
    # Job entrypoints say `python`: it must be the interpreter that has this Ray and latte.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard_port}"
    state = {"pid": proc.pid, "pgid": proc.pid, "temp_dir": temp_dir, "address": address,
             "gcs_address": f"127.0.0.1:{port}", "port": port, "dashboard_port": dashboard_port,
             "client_port": client_port, "agent_port": agent_port, "num_cpus": num_cpus,
             "log": str(log), "started": time.time()}
    (Path(temp_dir) / STATE_FILE).write_text(json.dumps(state, indent=2))
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            (Path(temp_dir) / STATE_FILE).unlink(missing_ok=True)
            raise RuntimeError(f"`ray start` exited with {proc.returncode}; last lines of {log}:\n{_tail(log)}")
        try:
            if _get_json(f"{address}/api/version").get("ray_version"):
                gcs = Path(temp_dir) / "ray_current_cluster"  # the address Ray itself records
                if gcs.is_file() and gcs.read_text().strip():
                    state["gcs_address"] = gcs.read_text().strip()
                    (Path(temp_dir) / STATE_FILE).write_text(json.dumps(state, indent=2))
                return {**state, "running": True, "jobs_api": True}
        except (OSError, ValueError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            down(temp_dir)
            raise RuntimeError(f"the Jobs API at {address} did not answer within {timeout:.0f} s; "
                               f"last lines of {log}:\n{_tail(log)}")
        time.sleep(1.0)


def down(temp_dir: str = DEFAULT_TEMP_DIR, timeout: float = 30.0) -> bool:
    """Stop the recorded cluster; True if something was stopped."""
    temp_dir = str(Path(temp_dir).resolve())
    state = read_state(temp_dir)
    if state is None:
        return False
    pid, pgid = state["pid"], state["pgid"]
    stopped = False
    if _alive(pid) and _is_our_ray(pid, temp_dir):
        # `ray start --block` stops its own processes (GCS, raylet, dashboard) on SIGTERM.
        os.kill(pid, signal.SIGTERM)
        stopped = True
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
    # Anything left in the group we created (a stuck worker) goes too; nothing else is touched,
    # and a stale record (group id since reused) is left alone.
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if not _group_alive(pgid) or not (stopped or _group_is_ours(pgid, temp_dir)):
            break
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        stopped = True
        deadline = time.monotonic() + wait
        while _group_alive(pgid) and time.monotonic() < deadline:
            _alive(pid)  # reaps the leader if it is our child
            time.sleep(0.3)
    (Path(temp_dir) / STATE_FILE).unlink(missing_ok=True)
    return stopped


def _print_up(info: dict) -> None:
    a = info["address"]
    print(f"local Ray cluster is up (pid {info['pid']}, temp dir {info['temp_dir']})")
    print(f"  Jobs API / dashboard: {a}")
    print(f"  GCS address:          {info['gcs_address']}")
    print("  submit a job from the repo root:")
    print(f"    RAY_AUTH_MODE=disabled ray job submit --address {a} "
          f"--runtime-env cluster/runtime_env.yaml -- {EXAMPLE_JOB}")
    print(f"  stop it: latte cluster down-local --temp-dir {info['temp_dir']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="latte cluster", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="action", required=True)
    p_up = sub.add_parser("up-local", help="start a local head node with the Jobs API")
    p_up.add_argument("--num-cpus", type=int, default=None, help="default: all cores")
    p_up.add_argument("--num-gpus", type=int, default=None, help="default: detected")
    p_up.add_argument("--port", type=int, default=6379, help="GCS port")
    p_up.add_argument("--dashboard-port", type=int, default=8265, help="dashboard / Jobs API port")
    p_up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the Jobs API")
    p_status = sub.add_parser("status-local", help="show the local cluster and its jobs")
    p_down = sub.add_parser("down-local", help="stop the local cluster started by up-local")
    for p in (p_up, p_status, p_down):
        p.add_argument("--temp-dir", default=DEFAULT_TEMP_DIR, help="Ray temp dir; identifies the cluster")
    args = ap.parse_args(argv)

    if args.action == "up-local":
        try:
            info = up(args.num_cpus, args.port, args.dashboard_port, args.temp_dir, args.timeout, args.num_gpus)
        except RuntimeError as exc:
            print(f"latte cluster: {exc}", file=sys.stderr)
            return 1
        _print_up(info)
        return 0
    if args.action == "status-local":
        info = status(args.temp_dir)
        if info is None or not info["running"]:
            print(f"no local cluster running (temp dir {args.temp_dir})")
            return 1
        print(f"running: pid {info['pid']}, Ray {info.get('ray_version', '?')}, "
              f"Jobs API {info['address']} ({'answering' if info['jobs_api'] else 'not answering'}), "
              f"jobs {info.get('jobs', {})}")
        return 0 if info["jobs_api"] else 1
    stopped = down(args.temp_dir)
    print("local cluster stopped" if stopped else f"no local cluster recorded in {args.temp_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
