"""No traceback ever reaches a user of the command line (issue 16 §6).

Every command runs in a subprocess, as a user runs it, against each kind of
failure: a missing file, a file that is not a hive, a damaged hive, an
unwritable output, a value that cannot be decoded, a timestamp no date can
hold, Ctrl-C, a closed output pipe. Each must end with one
``regfast: error: ...`` line (or quietly, for the pipe) and exactly the
documented exit status: 0 ok, 1 data/IO error, 2 usage, 130 interrupted;
``diff`` as diff(1): 0 same, 1 different, 2 error.
"""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from regfast.io.writer import REG_DWORD, REG_QWORD, Value, build_hive
from conftest import ROOT, corpus_path

OK, ERROR, USAGE, INTERRUPTED = 0, 1, 2, 130
TS = 0x01D0000000000000

TREE = {
    "App": {"Name": "text", "Count": 42, "Blob": bytes(range(64)),
            "Sub": {"Deeper": {"x": "y"}}},
    # ~2,000 keys over several hbins: enough output to fill a pipe's buffer
    "Bulk": {f"Key{i:04d}": {"n": i, "s": f"value {i}" * 4} for i in range(2000)},
}


def run(*args: str, stdout=subprocess.PIPE, env: dict | None = None, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    """`regfast ARGS` as a user runs it (a fresh interpreter)."""
    return subprocess.run([sys.executable, "-m", "regfast.cli", *args], stdout=stdout,
                          stderr=subprocess.PIPE, env=env, cwd=cwd, timeout=timeout, text=True,
                          errors="backslashreplace")


def check(r: subprocess.CompletedProcess, status: int, *, error: bool | None = None) -> None:
    """Exactly `status`, no traceback; `error`: exactly one 'regfast: error:'
    line on stderr (default: when the status is not 0)."""
    assert "Traceback" not in r.stderr, r.stderr
    assert "Exception ignored" not in r.stderr, r.stderr
    assert r.returncode == status, (r.returncode, r.stderr)
    if error is None:
        error = status != OK
    errors = [line for line in r.stderr.splitlines() if line.startswith("regfast: error:")]
    if error:
        assert len(errors) == 1, r.stderr
    else:
        assert not errors, r.stderr


@pytest.fixture(scope="module")
def hives(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hives")
    data, layout = build_hive(TREE, timestamp=TS, file_name="SOFTWARE")
    out = {}

    def put(name: str, blob: bytes) -> None:
        (d / name).write_bytes(blob)
        out[name] = d / name

    put("good.hiv", data)
    put("other.hiv", build_hive({"App": {"Name": "changed"}}, timestamp=TS)[0])
    put("notahive.hiv", b"this is not a registry hive at all" * 100)
    # an hbin in the middle zeroed: the strict open refuses the file
    broken = bytearray(data)
    start, size = layout.hbins[2]
    broken[start:start + size] = bytes(size)
    put("damaged.hiv", bytes(broken))
    # the open accepts it, reading App's subkeys fails: a damaged subkey list
    listbad = bytearray(data)
    struct.pack_into("<H", listbad, layout.subkey_list["App"] + 4, 0x4242)
    put("listbad.hiv", bytes(listbad))
    # values whose size does not fit their type (decoding may refuse them)
    put("decode.hiv", build_hive({"K": {"d3": Value(REG_DWORD, b"\x01\x02\x03"),
                                        "q0": Value(REG_QWORD, b""), "s": "ok"}}, timestamp=TS)[0])
    # timestamps past the year 9999: the base block's and a key's
    late = bytearray(build_hive({"K": {"v": 1}}, timestamp=TS)[0])
    struct.pack_into("<Q", late, 12, 0xFFFFFFFFFFFFFFF0)
    csum = 0
    for (w,) in struct.iter_unpack("<I", late[:508]):
        csum ^= w
    struct.pack_into("<I", late, 508, csum)
    put("latebase.hiv", bytes(late))
    data2, layout2 = build_hive({"K": {"v": 1}}, timestamp=TS)
    late_key = bytearray(data2)
    struct.pack_into("<Q", late_key, layout2.nk["K"] + 4 + 4, 0xFFFFFFFFFFFFFFF0)
    put("latekey.hiv", bytes(late_key))
    out["dir"] = d
    return out


def test_help_documents_the_exit_statuses():
    r = run("--help")
    check(r, OK)
    for line in ("0    success", "1    the hive, a file or its data", "2    usage error",
                 "130  interrupted", "diff follows diff(1)"):
        assert line in r.stdout, r.stdout
    readme = (ROOT / "README.md").read_text()
    assert "Exit status" in readme and "**130** interrupted" in readme


# ---- a missing file, a file that is not a hive, a damaged hive -----------------

READERS = [
    ("info", "{h}"), ("ls", "{h}"), ("ls", "-r", "-v", "{h}"), ("get", "{h}", "App", "Name"),
    ("export", "-f", "json", "{h}"), ("export", "-f", "csv", "{h}"), ("export", "{h}", "-o", "{o}.reg"),
    ("export", "-f", "json", "{h}", "-o", "{o}.json"), ("scan", "{h}", "--stats"),
    ("diff", "{h}", "{good}"), ("diff", "{good}", "{h}", "--json"),
]


def _args(spec, h, hives, tmp_path):
    return [a.format(h=h, good=hives["good.hiv"], o=tmp_path / "out") for a in spec]


@pytest.mark.parametrize("kind", ["missing", "notahive.hiv", "damaged.hiv"])
@pytest.mark.parametrize("spec", READERS, ids=lambda s: "-".join(a for a in s if "{" not in a))
def test_unreadable_hive_is_one_error_line(hives, tmp_path, kind, spec):
    h = str(tmp_path / "nope.hiv") if kind == "missing" else str(hives[kind])
    r = run(*_args(spec, h, hives, tmp_path))
    if kind == "damaged.hiv" and (spec[0] == "get" or spec == ("ls", "{h}")):
        # a strict open checks each hbin when a read first reaches it: these
        # read only the root's hbin, and succeed (as in test_damage_met_while_reading)
        check(r, OK)
        return
    check(r, USAGE if spec[0] == "diff" else ERROR)
    if kind == "missing":
        assert "nope.hiv" in r.stderr and "winerror 2" in r.stderr
    elif kind == "notahive.hiv":
        assert "winerror 1017" in r.stderr
    else:
        assert "winerror 1015" in r.stderr and "hive offset 0x" in r.stderr
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".*regfast-tmp"))


@pytest.mark.parametrize("spec", READERS, ids=lambda s: "-".join(a for a in s if "{" not in a))
def test_damage_met_while_reading(hives, tmp_path, spec):
    """The open succeeds; reading App's damaged subkey list fails: strict
    commands stop with one error line at the offset; those that never read
    that list succeed."""
    h = str(hives["listbad.hiv"])
    r = run(*_args(spec, h, hives, tmp_path))
    reads_the_list = not (spec[0] in ("info", "get") or spec == ("ls", "{h}"))
    if spec[0] == "diff":
        check(r, USAGE)
    else:
        check(r, ERROR if reads_the_list else OK)
    if reads_the_list:
        assert "winerror 1015" in r.stderr and "0x" in r.stderr
        assert not list(tmp_path.glob("out*"))
    # tolerant: the same commands end well and say what they skipped
    if spec[0] in ("ls", "export", "scan", "diff"):
        r = run(*_args(spec, h, hives, tmp_path), "--tolerant")
        if spec[0] == "diff":   # diff(1)'s statuses: the hives differ (1), and where it could not see
            check(r, 1, error=False)
            side = "old" if spec[1] == "{h}" else "new"
            assert f"regfast: warning: {side} side (listbad.hiv): damaged subkeys, values, class name or security under App " \
                   "not compared" in r.stderr, r.stderr
            assert f"regfast: warning: {side} side: 1 damaged spot read past" in r.stderr, r.stderr
            return
        check(r, OK)
        # a tolerant open checks every subkey list, so the damage is reported
        # even by commands that never read App's list (forensics' tree check)
        assert "regfast: warning: 1 damaged spot read past" in r.stderr, r.stderr
        if spec[0] == "scan":
            assert "skipped: 1 damaged keys" in r.stdout


def test_recover_and_sample_failures(hives, tmp_path):
    check(run("recover", str(tmp_path / "nope.hiv"), "-o", str(tmp_path / "x.hiv")), ERROR)
    check(run("recover", str(hives["notahive.hiv"]), "-o", str(tmp_path / "x.hiv")), ERROR)
    r = run("recover", str(hives["good.hiv"]))                       # no -o: usage
    check(r, USAGE)
    check(run("recover", str(hives["good.hiv"]), "-o", str(hives["good.hiv"])), USAGE)
    check(run("sample", str(tmp_path / "no" / "such" / "dir" / "s.hiv")), ERROR)
    check(run("sample", str(tmp_path)), ERROR)                       # a directory
    assert not list(tmp_path.iterdir())


def test_usage_errors(hives, tmp_path):
    check(run("ls"), USAGE, error=True)                              # argparse: missing HIVE
    check(run("frobnicate"), USAGE, error=True)
    check(run("ls", str(hives["good.hiv"]), "-d", "x"), USAGE, error=True)
    check(run("ls", str(hives["good.hiv"]), "-d", "-1"), USAGE)
    check(run("export", str(hives["good.hiv"])), USAGE)              # .reg to stdout
    r = run("export", "-f", "json", str(hives["good.hiv"]), "-o", str(hives["good.hiv"]))
    check(r, USAGE)                                                   # over its own input
    assert "refusing" in r.stderr
    assert build_hive(TREE, timestamp=TS, file_name="SOFTWARE")[0] == hives["good.hiv"].read_bytes()


def test_missing_key_and_value(hives):
    r = run("get", str(hives["good.hiv"]), r"App\Nope", "x")
    check(r, ERROR)
    assert "winerror 2" in r.stderr and r.stdout == ""
    check(run("get", str(hives["good.hiv"]), "App", "nope"), ERROR)
    check(run("ls", str(hives["good.hiv"]), "Nope"), ERROR)
    check(run("export", "-f", "csv", str(hives["good.hiv"]), "Nope"), ERROR)
    check(run("diff", str(hives["good.hiv"]), str(hives["other.hiv"]), "Bulk"), USAGE)
    check(run("diff", str(hives["good.hiv"]), str(hives["other.hiv"])), 1, error=False)   # differ
    check(run("diff", str(hives["good.hiv"]), str(hives["good.hiv"])), OK)


# ---- outputs that cannot be written --------------------------------------------

@pytest.mark.parametrize("fmt", ["reg", "json", "csv"])
def test_unwritable_output(hives, tmp_path, fmt):
    good = str(hives["good.hiv"])
    r = run("export", "-f", fmt, good, "-o", str(tmp_path / "missing-dir" / f"x.{fmt}"))
    check(r, ERROR)
    assert "No such file or directory" in r.stderr and "missing-dir" in r.stderr
    check(run("export", "-f", fmt, good, "-o", str(tmp_path)), ERROR)          # a directory
    plain = tmp_path / "plain.txt"
    plain.write_text("a file, not a directory")
    r = run("export", "-f", fmt, good, "-o", str(plain / f"x.{fmt}"))          # even root cannot
    check(r, ERROR)
    assert "Not a directory" in r.stderr
    locked = tmp_path / "locked"
    locked.mkdir()
    old = locked / f"old.{fmt}"
    old.write_text("previous export")
    os.chmod(old, 0o444)
    os.chmod(locked, 0o555)
    try:
        if not os.access(locked, os.W_OK):      # root ignores the modes: nothing to check then
            check(run("export", "-f", fmt, good, "-o", str(locked / f"new.{fmt}")), ERROR)
            check(run("export", "-f", fmt, good, "-o", str(old)), ERROR)
            assert old.read_text() == "previous export"
            assert sorted(p.name for p in locked.iterdir()) == [f"old.{fmt}"]
    finally:
        os.chmod(locked, 0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked", "plain.txt"]


# ---- data that cannot be decoded, dates no datetime holds ------------------------

def test_values_that_do_not_fit_their_type(hives, tmp_path):
    h = str(hives["decode.hiv"])
    r = run("ls", "-v", h, "K")
    check(r, OK)
    assert "d3 = REG_DWORD" in r.stdout and "q0 = REG_QWORD" in r.stdout
    # get exits non-zero only when it could not print a value
    for name in ("d3", "q0"):
        r = run("get", h, "K", name)
        if r.returncode == OK:
            check(r, OK, error=False)
            assert r.stdout.startswith(("REG_DWORD ", "REG_QWORD ")), r.stdout
        else:
            check(r, ERROR)
            assert r.stdout == "" and "--raw" in r.stderr
        r = subprocess.run([sys.executable, "-m", "regfast.cli", "get", h, "K", name, "--raw"],
                           capture_output=True, timeout=60)
        assert r.returncode == OK and r.stdout == {"d3": b"\x01\x02\x03", "q0": b""}[name]
    check(run("get", h, "K", "s"), OK)
    check(run("scan", h, "--stats"), OK)
    check(run("export", h, "-o", str(tmp_path / "d.reg")), OK)     # .reg carries the bytes as hex
    # JSON/CSV: a decoder that refuses such a value ends with one error line
    # and no file; one that decodes them (winreg's rules) exports everything
    for fmt in ("json", "csv"):
        out = tmp_path / f"d.{fmt}"
        r = run("export", "-f", fmt, h, "-o", str(out))
        if r.returncode == OK:
            check(r, OK)
            assert "d3" in out.read_text()
        else:
            check(r, ERROR)
            assert not out.exists()
    r = run("diff", h, str(hives["good.hiv"]))
    check(r, 1, error=False) if r.returncode == 1 else check(r, USAGE)


def test_timestamps_past_year_9999(hives, tmp_path):
    r = run("info", str(hives["latebase.hiv"]))
    check(r, OK)
    assert "last written" in r.stdout and "0xfffffffffffffff0" in r.stdout.lower()
    h = str(hives["latekey.hiv"])
    for args in (["ls", "-r", "-v", h], ["scan", h], ["export", "-f", "json", h],
                 ["export", "-f", "csv", h], ["export", h, "-o", str(tmp_path / "k.reg")]):
        check(run(*args), OK)
    check(run("diff", h, str(hives["latebase.hiv"])), 1, error=False)


# ---- Ctrl-C and closed pipes -------------------------------------------------------

_SLOW_EXPORT = textwrap.dedent("""
    import sys, time
    import regfast.io.export as ex
    real = ex.export
    def slow(hive, out, *a, **k):
        out.write("partial output")
        out.flush()
        sys.stderr.write("READY\\n")
        sys.stderr.flush()
        time.sleep(60)
        return real(hive, out, *a, **k)
    ex.export = slow
    from regfast.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize("fmt", ["reg", "json", "csv"])
def test_ctrl_c_during_an_export(hives, tmp_path, fmt):
    """A real SIGINT half-way through an export: status 130, one line, and
    the previous file of that name left as it was (no partial file, no
    temporary file)."""
    script = tmp_path / "slow.py"
    script.write_text(_SLOW_EXPORT)
    out = tmp_path / f"out.{fmt}"
    out.write_text("the previous export")
    p = subprocess.Popen([sys.executable, str(script), "export", "-f", fmt, str(hives["good.hiv"]),
                          "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr.readline() == "READY\n"
        assert len(list(tmp_path.glob(".*regfast-tmp"))) == 1       # the export goes to a temporary
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        p.kill()
        p.wait()
    r = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
    check(r, INTERRUPTED)
    assert "interrupted" in stderr
    assert out.read_text() == "the previous export"
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted([out.name, script.name])


@pytest.mark.parametrize("spec", [
    ("info", "{h}"), ("ls", "-r", "-v", "{h}"), ("get", "{h}", "App", "Name"),
    ("export", "-f", "json", "{h}"), ("export", "-f", "csv", "{h}"), ("scan", "{h}", "--stats"),
    ("diff", "{h}", "{other}"), ("diff", "{h}", "{other}", "--json"),
], ids=lambda s: "-".join(a for a in s if "{" not in a))
def test_closed_pipe_ends_quietly(hives, spec):
    """`regfast ls -r HIVE | head`: the reader is gone before (or while) the
    command writes: exit 0 for regfast's own commands (diff keeps its
    'different' status), nothing on stderr."""
    args = [a.format(h=hives["good.hiv"], other=hives["other.hiv"]) for a in spec]
    r_fd, w_fd = os.pipe()
    os.close(r_fd)                                   # nobody will ever read
    try:
        r = run(*args, stdout=w_fd)
    finally:
        os.close(w_fd)
    assert r.stderr.strip() == "" or spec[0] == "diff", r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert r.returncode == (1 if spec[0] == "diff" else OK), r.stderr


def test_head_of_a_long_listing(hives):
    """The shell pipeline itself: the reader takes a few lines and leaves."""
    p = subprocess.Popen([sys.executable, "-m", "regfast.cli", "ls", "-r", "-v", str(hives["good.hiv"])],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = [p.stdout.readline() for _ in range(3)]
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == OK, err
    assert lines[0] == b"\\\n" and err == ""


def test_agent_commands_without_an_agent(tmp_path):
    env = dict(os.environ, REGFAST_AGENT=str(tmp_path / "no-agent.exe"))
    for args in (["save-key", r"HKCU\Software", str(tmp_path / "s.hiv")], ["key-security", r"HKCU\Software"]):
        r = run(*args, env=env)
        check(r, ERROR)
        assert "regfast-agent" in r.stderr
    assert not (tmp_path / "s.hiv").exists()


def test_internal_errors_are_one_line_too(tmp_path):
    """A bug of regfast's (any unexpected exception) still ends as one line;
    REGFAST_TRACEBACK=1 shows the traceback for a bug report."""
    script = tmp_path / "bug.py"
    script.write_text("import sys, regfast.cli.commands as c\n"
                      "def boom(*a, **k): raise KeyError('bug')\n"
                      "c.cmd_ls = boom\n"
                      "sys.exit(c.main(sys.argv[1:]))\n")
    hive = tmp_path / "h.hiv"
    hive.write_bytes(build_hive({"K": {}})[0])
    r = subprocess.run([sys.executable, str(script), "ls", str(hive)], capture_output=True, text=True,
                       timeout=60)
    check(r, ERROR)
    assert "unexpected KeyError" in r.stderr
    r = subprocess.run([sys.executable, str(script), "ls", str(hive)], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, REGFAST_TRACEBACK="1"))
    assert "Traceback" in r.stderr and r.returncode == 1


def test_corruption_hint_names_the_flag_on_the_command_line():
    """A real hive whose subkey list is damaged (plaso's
    regf_corrupt_sub_key_list): the library's error advises
    errors="tolerant"; the CLI gives the same advice as its flag, and the
    flag then reads the rest."""
    h = str(corpus_path("plaso__regf_corrupt_sub_key_list.hiv"))
    r = run("ls", h, "-r")
    check(r, ERROR)
    assert "rerun with --tolerant to read the rest" in r.stderr, r.stderr
    assert 'errors="tolerant"' not in r.stderr
    # read tolerantly, the spots skipped are listed without advice to do what was done
    for args in (("ls", h, "-r", "--tolerant"), ("export", "-f", "json", h, "--tolerant")):
        r = run(*args)
        check(r, OK)
        assert "damaged" in r.stderr and "errors=" not in r.stderr and "rerun" not in r.stderr, r.stderr
    # opened tolerantly but read strictly: the way out is the other flag
    r = run("scan", h, "--tolerant", "--errors", "strict")
    check(r, ERROR)
    assert "rerun with --errors skip to go on past it" in r.stderr, r.stderr
    assert "tolerant to read" not in r.stderr and 'errors="skip"' not in r.stderr
    check(run("scan", h, "--tolerant"), OK)


# ---- outputs that are not plain files --------------------------------------------

def test_sample_and_profile_outputs_that_are_not_plain_files(tmp_path):
    """`regfast sample` and `regfast profile --json` write as the exports do
    (regfast._files.atomic_output): a FIFO (or a device: /dev/full was
    replaced by a plain file, as root) is written into, never renamed over;
    a symbolic link is written through; a directory fails with no temporary
    file left behind."""
    import stat

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    # the read end opened first (non-blocking): the sample (20 KiB) fits the
    # pipe's buffer, so the writer never waits and nothing can hang here
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        r = run("sample", str(fifo))
        check(r, OK)
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        assert os.read(rfd, 4) == b"regf"
    finally:
        os.close(rfd)

    real = tmp_path / "real.hiv"
    real.write_bytes(b"old")
    link = tmp_path / "link.hiv"
    link.symlink_to(real)
    check(run("sample", str(link)), USAGE)              # someone's file: not replaced unasked
    assert real.read_bytes() == b"old"
    check(run("sample", str(link), "--force"), OK)
    assert link.is_symlink() and real.read_bytes()[:4] == b"regf"
    r = run("sample", str(link))                         # the sample itself again: nothing to do
    check(r, OK)
    assert "already there" in r.stdout

    out = tmp_path / "out"
    out.mkdir()
    r = run("profile", "--json", str(out), "--", sys.executable, "-c", "pass")
    assert r.returncode != OK and "Is a directory" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.hiv", "out", "pipe", "real.hiv"]
    assert not list(out.iterdir())


def test_usage_errors_of_scan_many_and_profile_come_first(tmp_path):
    """Exit 2, said before any work: a missing input, a negative --workers
    (before walking the input), a script that does not exist (before an
    empty report)."""
    r = run("scan-many", str(tmp_path / "nope"), "-o", str(tmp_path / "out"), "-q")
    check(r, USAGE)
    assert "no such file or directory" in r.stderr
    r = run("scan-many", str(tmp_path), "-o", str(tmp_path / "out"), "--workers", "-1", "-q")
    check(r, USAGE)
    assert "--workers must be >= 0" in r.stderr
    r = run("profile", "--", sys.executable, str(tmp_path / "nope.py"))
    check(r, USAGE)
    assert "no such script" in r.stderr and "operations" not in r.stderr


def test_profile_runs_python_dash_c(hives):
    """`regfast profile -- python -c CODE args` runs CODE as python -c does
    (sys.argv[0] "-c"), profiled."""
    code = ("import sys, regfast; print(sys.argv); "
            f"regfast.open_hive({str(hives['good.hiv'])!r}).open('App')")
    r = run("profile", "--", sys.executable, "-c", code, "x")
    check(r, OK)
    assert "['-c', 'x']" in r.stdout and "open_key" in r.stderr


def test_profile_compare_of_a_file_that_is_not_text(hives, tmp_path):
    r = run("profile", "compare", str(hives["good.hiv"]), str(hives["good.hiv"]))
    check(r, USAGE, error=False)                         # (its lines name `profile compare`)
    assert "not a regfast profile (not UTF-8 text)" in r.stderr


def test_a_missing_journal_says_its_win32_code(tmp_path):
    r = run("recover", "--journal", str(tmp_path / "missing"))
    check(r, ERROR, error=False)                         # (a line per journal, named first)
    assert "(winerror 2)" in r.stderr and "None" not in r.stderr


def test_commands_without_tolerant_name_the_ones_that_have_it(hives, tmp_path):
    """`get` has no --tolerant: the library's advice (errors="tolerant", a
    Python argument) becomes the commands that take the flag."""
    cut = tmp_path / "cut.hiv"
    cut.write_bytes(hives["good.hiv"].read_bytes()[:6000])
    r = run("get", str(cut), "App", "Name")
    check(r, ERROR)
    assert 'errors="tolerant"' not in r.stderr and "--tolerant read the rest" in r.stderr
