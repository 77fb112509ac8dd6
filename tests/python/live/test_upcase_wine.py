"""The name fold against its oracle: Windows' RtlUpcaseUnicodeChar, as Wine
implements it, for every UTF-16 code unit.

regfast's fold (src/core/rf_upcase_table.h, src/regfast/_upcase.py, both from
tools/gen_upcase.py) decides which names are one name, the lh hashes the
writer stores and the lookups compare, and the subkey order the reader
checks. It was Python's str.upper() once: 54 units folded otherwise than
Windows (µ, ı, ſ, final ς... folded; ᾀ-ᾧ, ᾳ, ῃ, ῳ not), so the live caches
merged "ı" and "I" (a write to one went to the other), and lookups of names
whose stored lh hash Windows computed missed. Found by review.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest

from regfast._upcase import UPCASE
from wine_session import BASE, wine  # noqa: F401  (shared fixtures)

PROBE = r"""
#include <windows.h>
#include <stdio.h>
typedef WCHAR (WINAPI *upcase_fn)(WCHAR);
int main(void)
{
    upcase_fn up = (upcase_fn)GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "RtlUpcaseUnicodeChar");
    if (!up) return 2;
    for (unsigned c = 0; c < 0x10000; c++) {
        WCHAR u = up((WCHAR)c);
        if (u != c) printf("%04x %04x\n", c, (unsigned)u);
    }
    return 0;
}
"""


def test_the_fold_is_rtlupcaseunicodechar_for_every_unit(wine, tmp_path):  # noqa: F811
    cc = shutil.which("x86_64-w64-mingw32-gcc")
    assert cc, "mingw-w64 is installed wherever the wine fixture runs (it builds the agent)"
    src = tmp_path / "upcase.c"
    src.write_text(PROBE)
    exe = tmp_path / "upcase.exe"
    subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True, capture_output=True, timeout=120)
    r = subprocess.run(["wine", str(exe)], env=wine.env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    windows = {int(a, 16): int(b, 16) for a, b in (line.split() for line in r.stdout.splitlines())}
    assert len(windows) > 1000                  # the probe ran: ASCII, Latin-1, Greek, Cyrillic...
    differ = sorted(set(windows.items()) ^ set(UPCASE.items()))
    assert differ == [], [f"{c:04x}" for c, _ in differ[:40]]


def test_live_keys_that_only_str_upper_folds_together_stay_apart(wine):  # noqa: F811
    """Wine, as Windows, keeps "ı" and "I" (and "ς", "Σ") apart; regfast's
    key cache took them for one key: create_key("I") returned the "ı" key
    and its set_value wrote there."""
    reg = wine.connect(backend="remote")
    path = BASE + r"\fold"
    try:
        k = reg.create_key("HKCU", path)
        k.create_key("\u0131").set_value("which", "dotless")
        k.create_key("I").set_value("which", "capital")
        k.set_value("\u03c2", 1)
        k.set_value("\u03a3", 2)
        assert sorted(k.subkey_names()) == sorted(["\u0131", "I"])
        assert k.subkey("\u0131")["which"] == "dotless" and k.subkey("I")["which"] == "capital"
        assert k["\u03c2"] == 1 and k["\u03a3"] == 2 and k["\u03c3"] == 2
    finally:
        reg.delete_key("HKCU", path, tree=True)
        reg.close()
