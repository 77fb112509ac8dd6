"""Drives bench/peers/hivex_worker.py under the system Python (where Debian's
python3-hivex lives). Times come from inside the worker."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

WORKER = Path(__file__).with_name("hivex_worker.py")
#: the interpreter python3-hivex is installed for (override for other setups)
SYSTEM_PYTHON = os.environ.get("REGFAST_BENCH_HIVEX_PYTHON", "/usr/bin/python3")


class HivexUnavailable(RuntimeError):
    pass


class HivexWorker:
    """One long-lived worker process; call(op, **args) -> reply dict."""

    def __init__(self):
        if not os.path.exists(SYSTEM_PYTHON):
            raise HivexUnavailable(f"{SYSTEM_PYTHON} does not exist (python3-hivex is a Debian "
                                   "package for the system Python: apt-get install python3-hivex)")
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import hivex"], capture_output=True, text=True)
        if probe.returncode:
            raise HivexUnavailable(f"{SYSTEM_PYTHON} cannot import hivex "
                                   f"({probe.stderr.strip().splitlines()[-1] if probe.stderr else '?'}); "
                                   "apt-get install python3-hivex")
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.hello = self.call("hello")

    def call(self, op: str, **args) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"hivex worker died (exit {self.proc.poll()})")
        rep = json.loads(line)
        if "error" in rep:
            raise RuntimeError(f"hivex worker: {op}: {rep['error']}")
        return rep

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
