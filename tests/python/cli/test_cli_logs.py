"""Log replay is visible on the command line (issue 16 section 6): every
command that opens a dirty hive says in one stderr line whether logs were
applied (how many entries, which files) or why not; every one takes
--no-logs; warnings print as one ``regfast: warning:`` line; `regfast diff`
says what it replayed on each side.

Real corpus hives where they show the case (plaso's Amcache.hve, dirty with
no logs; dfwinreg's NTUSER.DAT with its real new-format .LOG), writer-made
dirty hives for the rest.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import warnings

import pytest

import regfast
from regfast.cli import main
from regfast.hive.logs import DirtyHiveWarning, recover, recovery_of, replay
from regfast.io.logwriter import make_dirty_hive, set_sequence
from regfast.io.writer import build_hive

from conftest import corpus_path
from isolated import child_env

TS = 132_500_000_000_000_000


def _tree(i: int) -> dict:
    return {"Vendor": {"App": {"Counter": i, "Note": f"version {i:02d}"}}, "Other": {"Flag": 1}}


def _images(n: int):
    return [build_hive(_tree(i), timestamp=TS, sequence=(10, 10), file_name="SOFTWARE")[0] for i in range(n)]


@pytest.fixture
def dirty(tmp_path):
    """SOFTWARE: dirty (11 / 10), its two entries in LOG1 and LOG2."""
    make_dirty_hive(_images(3), logs=[".LOG1", ".LOG2"]).write(tmp_path / "SOFTWARE")
    return tmp_path / "SOFTWARE"


# every command that opens a hive file, with what it needs besides the hive
COMMANDS = {
    "info": [],
    "ls": ["Vendor\\App", "-v"],
    "get": ["Vendor\\App", "Counter"],
    "export": ["-f", "json"],
    "scan": [],
}


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _notes(err: str) -> list:
    return [line for line in err.splitlines() if "hive (" in line]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_says_what_it_replayed(dirty, capsys, command):
    code, out, err = _run(capsys, command, dirty, *COMMANDS[command])
    assert code == 0
    notes = _notes(err)
    assert notes == ["regfast: note: SOFTWARE: dirty hive (sequence numbers differ (11 / 10)): replayed 2 log "
                     "entries up to sequence 12 (SOFTWARE.LOG1: 1, SOFTWARE.LOG2: 1)"], err
    if command == "get":
        assert out.strip() == "REG_DWORD 2"                 # the replayed value


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_no_logs(dirty, capsys, command):
    code, out, err = _run(capsys, command, dirty, *COMMANDS[command], "--no-logs")
    assert code == 0
    assert _notes(err) == ["regfast: warning: SOFTWARE: dirty hive (sequence numbers differ (11 / 10)) read as "
                           "stored, logs not replayed (--no-logs); its newest changes may be missing"], err
    if command == "get":
        assert out.strip() == "REG_DWORD 0"                 # as stored
    assert "Warning" not in err and ".py:" not in err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_dirty_hive_without_logs_says_why(dirty, capsys, command):
    for log in dirty.parent.glob("SOFTWARE.LOG*"):
        log.unlink()
    code, out, err = _run(capsys, command, dirty, *COMMANDS[command])
    assert code == 0
    assert _notes(err) == ["regfast: warning: SOFTWARE: dirty hive (sequence numbers differ (11 / 10)) read as "
                           "stored, logs not replayed: no transaction logs found; its newest changes may be "
                           "missing"], err
    # one clean line: not Python's "file:line: DirtyHiveWarning: ..." form
    assert "DirtyHiveWarning" not in err and ".py:" not in err and len(err.splitlines()) <= 2


def test_clean_hive_gets_no_note(tmp_path, capsys):
    (tmp_path / "SOFTWARE").write_bytes(_images(1)[0])
    for command in sorted(COMMANDS):
        code, out, err = _run(capsys, command, tmp_path / "SOFTWARE", *COMMANDS[command])
        assert code == 0 and not _notes(err) and "logs" not in err


def test_invalid_entry_is_a_warning_with_its_offset(dirty, capsys):
    log2 = bytearray((dirty.parent / "SOFTWARE.LOG2").read_bytes())
    log2[512 + 200] ^= 1                                     # its entry's page data: hash-1 fails
    (dirty.parent / "SOFTWARE.LOG2").write_bytes(log2)
    code, out, err = _run(capsys, "get", dirty, "Vendor\\App", "Counter")
    assert code == 0 and out.strip() == "REG_DWORD 1"
    [note] = _notes(err)
    assert note.startswith("regfast: warning: SOFTWARE: dirty hive") and "replayed 1 log entry" in note
    assert "stopped at an invalid log entry: SOFTWARE.LOG2 @0x200, sequence 12: hash-1" in note


def test_python_warnings_print_as_one_clean_line(dirty, capsys, monkeypatch):
    """A warning raised while a command runs (here: by the command itself)
    prints as `regfast: warning: ...`, one line."""
    import regfast.cli.commands as cli

    def noisy(args):
        warnings.warn("something odd\nacross two lines", UserWarning)
        return 0
    monkeypatch.setattr(cli, "cmd_sample", noisy)
    code, out, err = _run(capsys, "sample", dirty.parent / "x")
    assert code == 0 and err == "regfast: warning: something odd across two lines\n"
    # and outside the CLI, warnings are Python's again
    with pytest.warns(UserWarning):
        warnings.warn("plain", UserWarning)


def test_cli_subprocess_stderr_is_clean(dirty):
    """The same through a real process: no traceback, no warning form."""
    for log in dirty.parent.glob("SOFTWARE.LOG*"):
        log.unlink()
    p = subprocess.run([sys.executable, "-m", "regfast.cli", "ls", str(dirty)], capture_output=True, text=True,
                       env=child_env(), timeout=120)
    assert p.returncode == 0
    assert p.stderr.startswith("regfast: warning: SOFTWARE: dirty hive") and p.stderr.count("\n") == 1


# --------------------------------------------------------------------------
# regfast diff
# --------------------------------------------------------------------------

def test_diff_of_a_hive_and_its_recovery_says_what_was_replayed(dirty, tmp_path, capsys):
    out_hive = tmp_path.parent / f"{tmp_path.name}-recovered.hiv"
    assert main(["recover", str(dirty), "-o", str(out_hive)]) == 0
    capsys.readouterr()
    code, out, err = _run(capsys, "diff", dirty, out_hive)
    # the same content once the logs are replayed: but not silently
    assert code == 0
    notes = _notes(err)
    assert len(notes) == 1 and notes[0].startswith("regfast: note: old side: SOFTWARE: dirty hive")
    assert "replayed 2 log entries" in notes[0]
    assert err.splitlines()[-1] == ("no differences (after replaying the logs of SOFTWARE; --no-logs "
                                    "compares the files as stored)")
    # --no-logs: the files as stored differ
    code, out, err = _run(capsys, "diff", dirty, out_hive, "--no-logs")
    assert code == 1
    assert "Counter" in out and "(--no-logs)" in err and "after replaying" not in err


# --------------------------------------------------------------------------
# Real hives
# --------------------------------------------------------------------------

def test_real_dirty_hive_without_logs_amcache(capsys):
    """plaso's Amcache.hve is dirty (41 / 40) and came without its logs."""
    path = corpus_path("plaso__winreg_Amcache.hve")
    with pytest.warns(DirtyHiveWarning, match="no transaction logs found"):
        hive = regfast.open_hive(path)
    with hive:
        rep = recovery_of(hive)
        assert rep.dirty and rep.stale and rep.stop_reason == "no transaction logs found"
        assert rep.dirty_reasons == ["sequence numbers differ (41 / 40)"]
        assert hive.root.info().subkeys > 0
    code, out, err = _run(capsys, "info", path)
    assert code == 0
    assert _notes(err) == ["regfast: warning: plaso__winreg_Amcache.hve: dirty hive (sequence numbers differ "
                           "(41 / 40)) read as stored, logs not replayed: no transaction logs found; its newest "
                           "changes may be missing"]
    assert "none found; not applied: no transaction logs found" in out


def test_real_new_format_log_dfwinreg_ntuser(tmp_path, capsys):
    """dfwinreg's NTUSER.DAT (clean, 132 / 132) with its real .LOG: a
    new-format log whose one entry (sequence 131, two 4 KiB pages, real
    Marvin32 hashes) is already in the primary. Nothing is applied, in
    either mode, and nothing is said. Made dirty (132 / 131) the same entry
    continues it and is applied: the real hashes verify."""
    primary = corpus_path("dfwinreg__NTUSER.DAT")
    corpus_path("dfwinreg__NTUSER.DAT.LOG")
    for mode in ("forensic", "windows"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            hive, rep = recover(primary, mode=mode)
        with hive:
            assert not rep.dirty and not rep.applied and "clean" in rep.stop_reason
            [lg] = rep.logs
            assert lg.format == "new" and lg.sequence == 131 and lg.problem is None
    code, out, err = _run(capsys, "ls", primary)
    assert code == 0 and not _notes(err)

    data = bytearray(open(primary, "rb").read())
    (tmp_path / "NTUSER.DAT").write_bytes(set_sequence(data, 132, 131))
    shutil.copy(f"{primary}.LOG", tmp_path / "NTUSER.DAT.LOG")
    log = open(f"{primary}.LOG", "rb").read()
    hive, rep = recover(tmp_path / "NTUSER.DAT")
    with hive:
        assert rep.applied and rep.entries_applied == 1 and rep.pages_applied == 2
        assert rep.last_sequence == 131 and hive.info().sequence == (131, 131)
        assert rep.stop_reason == "no log entry with sequence 132: end of the logs"
        assert hive.scan().stats()["keys"] > 1000
    # the two pages (offsets 0 and 0x5000 of the hive bins data) are the log's
    buf, rep = replay(tmp_path / "NTUSER.DAT")
    assert bytes(buf[4096:4096 + 4096]) == log[512 + 56:512 + 56 + 4096]
    assert bytes(buf[4096 + 0x5000:4096 + 0x6000]) == log[512 + 56 + 4096:512 + 56 + 8192]
    code, out, err = _run(capsys, "ls", tmp_path / "NTUSER.DAT")
    assert _notes(err) == ["regfast: note: NTUSER.DAT: dirty hive (sequence numbers differ (132 / 131)): "
                           "replayed 1 log entry up to sequence 131 (NTUSER.DAT.LOG: 1)"]

