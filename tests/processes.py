"""Running `pipeline` in a subprocess, as a user would (to kill it, or to run two at once)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli(*args, env=None, **kw) -> subprocess.Popen:
    """`python -m pipeline ARGS` from the repository root, stdout and stderr as text pipes."""
    return subprocess.Popen([sys.executable, "-m", "pipeline", *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, **kw)


def holds_lock(store: Path, proc: subprocess.Popen, limit: float = 120.0) -> bool:
    """Wait until ``proc`` holds the writer lock of ``store`` (it is past start-up, at
    work); False when it ended first or ``limit`` seconds passed."""
    from features.lock import lock_path

    end = time.time() + limit
    while time.time() < end and proc.poll() is None:
        try:
            if json.loads(lock_path(store).read_text())["pid"] == proc.pid:
                return True
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.001)
    return False


_HOLDER = """import sys
from features.lock import store_lock
with store_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""


def hold_lock(store: Path, command: str = "label") -> subprocess.Popen:
    """A process holding ``store``'s writer lock until its stdin is closed (or it is killed)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(store), command], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc
