"""The C sources show their layers: no two files call each other in a loop
(tools/check_c_cycles.py builds every file and reads its symbols with nm),
and the core includes no backend's internals."""
from __future__ import annotations

import re
import shutil
import sys

import pytest

from conftest import ROOT, in_ci

sys.path.insert(0, str(ROOT / "tools"))
import check_c_cycles  # noqa: E402


def test_no_call_cycles_between_c_files():
    if not shutil.which("nm") or not shutil.which("cc"):
        if in_ci():
            pytest.fail("cc and nm are needed")
        pytest.skip("cc/nm missing")
    if not shutil.which("x86_64-w64-mingw32-gcc") and in_ci():
        pytest.fail("mingw-w64 is needed to check the Windows backends too")
    problems = check_c_cycles.check()
    assert not problems, "\n\n".join(problems)


def test_checker_finds_a_cycle(tmp_path):
    """The checker is not vacuous: two files calling each other are reported."""
    edges = {"a.c": {"b.c": {"f"}}, "b.c": {"a.c": {"g"}}, "c.c": {"a.c": {"h"}}}
    assert check_c_cycles.cycles(edges) == [["a.c", "b.c"]]
    assert check_c_cycles.cycles({"a.c": {"b.c": {"f"}}, "b.c": {}}) == []


def test_core_includes_no_backend_internals():
    for path in (ROOT / "src" / "core").glob("*.[ch]"):
        text = path.read_text()
        for inc in re.findall(r'#include\s+"([^"]+)"', text):
            assert not inc.startswith(("hive/", "nt/", "remote/", "agent/")), f"{path.name} includes {inc}"
