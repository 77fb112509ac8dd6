"""The remote backend (src/remote) from C, against the real agent under Wine:
tests/c/test_remote.c built with AddressSanitizer + UBSan, run with
`wine regfast-agent.exe` (the agent wine_session.py builds, in its
private WINEPREFIX). The fake-agent half of the same program also runs in the
plain ASan ctest pass (test_c_suites.py)."""
from __future__ import annotations

import shutil
import subprocess

from conftest import ROOT, artefact_dir
from test_c_suites import _cmake, _run
from wine_session import wine  # noqa: F401  (shared fixture: private prefix + agent)


def test_remote_backend_c_suite_against_the_agent_under_asan(wine):  # noqa: F811
    build = artefact_dir("ctest-asan")       # the build test_c_suites.py makes
    _run([*_cmake(), "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Debug",
          "-DREGFAST_BUILD_TESTS=ON", "-DREGFAST_SANITIZE=address,undefined"])
    _run([shutil.which("cmake"), "--build", str(build), "--target", "test_remote", "--parallel", "2"])
    env = dict(wine.env, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    r = subprocess.run([str(build / "tests" / "c" / "test_remote"), shutil.which("wine"), str(wine.exe)],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{r.stdout[-4000:]}\n{r.stderr[-6000:]}"
    assert " 0 failed" in r.stdout and "fake agent only" not in r.stdout
    checks = int(r.stdout.strip().splitlines()[-1].split()[0])
    assert checks > 200, r.stdout
