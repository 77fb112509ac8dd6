"""Fuzzes the remote backend's reply decoding for 10 s (fuzz/fuzz_remote.c:
the input plays the agent; libFuzzer + ASan + UBSan). Any crash, sanitizer
report, or broken promise (a call succeeding on a dead connection) fails."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, artefact_dir, in_ci


def test_fuzz_remote_replies_10s(tmp_path):
    if not shutil.which("clang"):
        if in_ci():
            pytest.fail("clang (libFuzzer) is required in CI")
        pytest.skip("clang is not installed: no libFuzzer")
    build = artefact_dir("fuzz-remote")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    env = dict(os.environ, CC="clang")
    for cmd in ([shutil.which("cmake"), "-S", str(ROOT), "-B", str(build), *gen, "-DREGFAST_FUZZ=ON",
                 "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                [shutil.which("cmake"), "--build", str(build), "--target", "fuzz_remote", "--parallel", "2"]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    seeds, corpus, art = tmp_path / "seeds", tmp_path / "corpus", tmp_path / "artifacts"
    corpus.mkdir()
    art.mkdir()
    subprocess.run([sys.executable, str(ROOT / "fuzz" / "make_remote_corpus.py"), str(seeds)], check=True)
    r = subprocess.run([str(build / "fuzz" / "fuzz_remote"), "-max_total_time=10", "-timeout=10",
                        "-rss_limit_mb=2048", f"-artifact_prefix={art}/", "-print_final_stats=1",
                        str(corpus), str(seeds)], capture_output=True, text=True, timeout=180)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and not list(art.iterdir()), out[-6000:]
    runs = int(re.search(r"stat::number_of_executed_units:\s+(\d+)", out).group(1))
    print(f"fuzz_remote: {runs} executions in 10 s")
    assert runs > 1000
