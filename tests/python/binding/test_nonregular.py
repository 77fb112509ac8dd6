"""Paths that are not regular files (issue 15, item 3).

open(2) on a FIFO waits for a writer, forever if none comes: open_hive,
Hive.from_file, the log finder and ``regfast info`` used to hang there
before any check. Now anything but a regular file is refused before a byte
is read: NotAHiveError (winerror 1017, ERROR_NOT_REGISTRY_FILE) with errno
ENODEV, or EISDIR for a directory. Each case runs in a child with a timeout
(tests/python/isolated.py), so a hang fails the test instead of stalling CI.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from isolated import child_env, run_isolated
from regfast.io.writer import build_hive

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")

CHILD = r"""
import errno, sys
import regfast
from regfast import Hive, NotAHiveError, recover

fifo, directory, hive_path = sys.argv[1:4]

def refused(fn, *args, want=errno.ENODEV, **kw):
    try:
        fn(*args, **kw)
    except NotAHiveError as e:
        assert e.winerror == 1017 and e.errno == want, (e, e.errno, e.winerror)
        assert "not a regular file" in str(e), e
        return
    raise AssertionError(f"{fn.__name__}{args} did not refuse")

refused(regfast.open_hive, fifo)
refused(regfast.open_hive, fifo, logs=None)
refused(regfast.open_hive, fifo, copy=True)
refused(regfast.open_hive, fifo, errors="tolerant")
refused(Hive.from_file, fifo)
refused(Hive.from_file, fifo, copy=True)
refused(recover, fifo)
refused(regfast.open_hive, directory, want=errno.EISDIR)
refused(regfast.open_hive, "/dev/null")
# a FIFO given as a log: the log is unusable, the hive opens
with regfast.open_hive(hive_path, logs=[fifo]) as h:
    report = regfast.recovery_of(h)
    assert report.logs[0].format == "invalid" and "not a regular file" in report.logs[0].problem, report
    assert h.open("A")["v"] == "x"
# a FIFO named like a log beside the hive (hive.LOG1): not a log, not a hang
with regfast.open_hive(hive_path) as h:
    assert h.open("A")["v"] == "x"
print("ok")
"""


@pytest.fixture
def places(tmp_path):
    fifo = tmp_path / "SYSTEM"
    os.mkfifo(fifo)
    data, _ = build_hive({"A": {"v": "x"}})
    hive = tmp_path / "real.hiv"
    hive.write_bytes(data)
    os.mkfifo(tmp_path / "real.hiv.LOG1")
    return fifo, tmp_path, hive


def test_fifo_directory_and_device_are_refused_without_blocking(places):
    fifo, directory, hive = places
    r = run_isolated(CHILD, str(fifo), str(directory), str(hive), timeout=60)
    assert r.stdout.strip() == "ok"


def test_cli_info_on_a_fifo_fails_fast(places):
    fifo, _, _ = places
    try:
        r = subprocess.run([sys.executable, "-m", "regfast.cli", "info", str(fifo)], capture_output=True,
                           text=True, timeout=60, env=child_env())
    except subprocess.TimeoutExpired:
        pytest.fail("regfast info hung on a FIFO")
    assert r.returncode != 0
    assert "not a regular file" in r.stderr, r.stderr


@pytest.mark.parametrize("opener", ["open_hive", "from_file", "from_file_bytes"])
def test_a_path_with_a_nul_is_refused_not_cut_short(tmp_path, opener):
    """C reads a path up to its first NUL: "a\\0zzz" would open the file "a",
    a different file from the one named. It is refused as open() refuses it
    (ValueError: embedded null byte), though "a" exists; also with the NUL
    in a directory part, before the log search looks there."""
    import regfast
    (tmp_path / "a").write_bytes(bytes(build_hive({"k": {"v": 1}})[0]))
    for bad in (str(tmp_path / "a") + "\0zzz", str(tmp_path) + "\0x/a"):
        with pytest.raises(ValueError, match="embedded null byte"):
            if opener == "open_hive":
                regfast.open_hive(bad)
            elif opener == "from_file":
                regfast.Hive.from_file(bad)
            else:
                regfast.Hive.from_file(os.fsencode(bad))
