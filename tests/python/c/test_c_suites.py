"""The C test suites (ctest), run from pytest so one command runs everything:

* the portable C tests, built with AddressSanitizer + UBSan;
* the NT backend tests, cross-built with mingw-w64 and run under Wine.

Each builds in its own directory, kept between runs so that re-runs are
incremental, outside the source tree (conftest.artefact_dir: the Wine suite's
prefix lives in its build directory, and a prefix's dosdevices/z: links to /).
A missing toolchain skips loudly, and fails in CI.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import ROOT, artefact_dir, in_ci



def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path:
        return path
    if in_ci():
        pytest.fail(f"{tool} ({package}) is required in CI; .ci/run installs it")
    pytest.skip(f"{tool} is not installed (Debian package {package}): this suite cannot run here")


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-6000:]}\n{r.stderr[-4000:]}")
    return r


def _cmake() -> list[str]:
    cmake = _need("cmake", "cmake (or pip install cmake)")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    return [cmake, *gen]


def test_native_c_suite_under_asan():
    build = artefact_dir("ctest-asan")
    _run([*_cmake(), "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Debug",
          "-DREGFAST_BUILD_TESTS=ON", "-DREGFAST_SANITIZE=address,undefined"])
    _run([shutil.which("cmake"), "--build", str(build), "--parallel", "2"])
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    r = _run(["ctest", "--test-dir", str(build), "--output-on-failure", "-E", "^nt_"], env=env, timeout=900)
    assert "100% tests passed" in r.stdout


def test_nt_backend_suite_under_wine():
    _need("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64")
    _need("wine", "wine64")
    toolchain = ROOT / "cmake" / "mingw-w64-x86_64.cmake"
    if not toolchain.exists():
        pytest.fail("cmake/mingw-w64-x86_64.cmake is missing: the NT backend cannot be cross-built")
    build = artefact_dir("ctest-wine")      # its Wine prefix too: <build>/wineprefix
    _run([*_cmake(), "-S", str(ROOT), "-B", str(build), f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
          "-DREGFAST_BUILD_TESTS=ON", "-DCMAKE_BUILD_TYPE=Release"])
    _run([shutil.which("cmake"), "--build", str(build), "--parallel", "2"])
    r = _run(["ctest", "--test-dir", str(build), "--output-on-failure"], timeout=1200)
    assert "100% tests passed" in r.stdout
    ran = [line for line in r.stdout.splitlines() if " Test " in line and "nt_" in line]
    assert ran, "no NT backend test ran under Wine:\n" + r.stdout
