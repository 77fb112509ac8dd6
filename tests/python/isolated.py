"""Running a piece of test code in a child Python, so that a crash (SIGSEGV,
SIGBUS, an ASan report) fails the test that caused it instead of killing
pytest, and a hang is cut by a timeout.

Under tools/asan_pytest.sh the interpreter runs with libasan preloaded, and
the preload is dropped from the environment at start-up (so that hivex or
Wine children run normally); it is kept in REGFAST_ASAN_PRELOAD, and the
children started here get it back: an instrumented extension cannot be
imported without it, and their ASan reports land where asan_pytest.sh looks.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    preload = os.environ.get("REGFAST_ASAN_PRELOAD")
    if preload:
        env["LD_PRELOAD"] = preload
    paths = [str(ROOT / "tests" / "python"), str(ROOT / "fuzz")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_isolated(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `code` (dedented) in a child interpreter with `args` as sys.argv[1:].
    Fails with the child's output when it dies of a signal, exits non-zero or
    outlives `timeout` seconds."""
    code = textwrap.dedent(code)
    try:
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                           timeout=timeout, env=child_env())
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"")[-3000:]
        raise AssertionError(f"the child hung for {timeout} s; its output:\n{out!r}") from None
    if r.returncode != 0:
        how = (f"died of {signal.Signals(-r.returncode).name}" if r.returncode < 0
               else f"exited with {r.returncode}")
        raise AssertionError(f"the child {how}:\n--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-6000:]}")
    return r
