"""The layers' import rules (docs/architecture.md): imports point down, never up or sideways.

Each check imports every module of a package in a fresh interpreter whose import system
refuses the forbidden packages, so a module-level import anywhere in the package fails it.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CHECK = textwrap.dedent("""
    import importlib, pkgutil, sys

    package, blocked = sys.argv[1], set(sys.argv[2].split(","))

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ImportError(f"{name} is imported, which {package} must not do")
            return None

    sys.meta_path.insert(0, Block())
    pkg = importlib.import_module(package)
    for m in pkgutil.walk_packages(pkg.__path__, package + "."):
        importlib.import_module(m.name)
    print("imported", package)
""")


def imports_without(package: str, blocked: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHECK, package, ",".join(blocked)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("package, blocked", [
    ("ttc", ["world", "ray", "torch", "probe", "serve_app", "jobs"]),  # the core: no torch, no Ray
    ("probe", ["world", "ray", "serve_app", "jobs"]),
    ("serve_app", ["world", "jobs", "latte_cli"]),
    ("jobs", ["serve_app", "latte_cli", "world"]),  # jobs/world.py imports world inside its functions
])
def test_packages_import_only_the_layers_below(package, blocked):
    r = imports_without(package, blocked)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"imported {package}" in r.stdout


def test_the_check_fails_on_a_forbidden_import():
    # world imports ttc: blocking ttc must fail it, or the check above proves nothing.
    r = imports_without("world", ["ttc"])
    assert r.returncode != 0 and "ttc" in r.stderr and "must not do" in r.stderr


def test_cluster_holds_configuration_only():
    code = [p.relative_to(REPO) for p in (REPO / "cluster").rglob("*.py")]
    assert code == [], f"cluster/ must hold configuration only, found {code}"


def test_readme_layout_table_lists_exactly_the_top_level_folders():
    import re

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    folders = {p.split("/")[0] for p in tracked.splitlines() if "/" in p and not p.startswith(".")}
    readme = (REPO / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([\w.-]+)/` \|", layout, flags=re.M))
    assert listed == folders, f"README layout lists {sorted(listed)}, the repo has {sorted(folders)}"
