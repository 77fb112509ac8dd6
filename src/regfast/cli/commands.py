"""The ``regfast`` command line.

Every failure ends as one ``regfast: error: ...`` line on stderr, never a
Python traceback, with one of these exit statuses (also in ``regfast
--help``):

====  =====================================================================
0     success (a closed output pipe, as in ``regfast ls -r HIVE | head``,
      also ends quietly with 0)
1     the hive, a file or its data could not be read or written: a missing
      or damaged hive, an unwritable output, a value that cannot be decoded
2     usage: bad arguments, or a request the command refuses (.reg to stdout,
      an output that would overwrite the input)
130   interrupted (Ctrl-C); an export or recovery in progress leaves no file
====  =====================================================================

``regfast diff`` follows diff(1) instead: 0 same, 1 different, 2 error.

Text for the terminal is written with Python's "backslashreplace": a
character the output encoding cannot hold — such as a lone UTF-16 surrogate,
which Windows allows in names — shows as ``\\udXXX``. Exports handle them
per format (see :mod:`regfast.io.export`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import regfast
from regfast._files import atomic_output
from regfast._types import type_name
from regfast.cli import diff as cli_diff
from regfast.cli import fleet as cli_fleet
from regfast.cli import live as cli_live
from regfast.cli import profile as cli_profile
from regfast.cli.logs import add_no_logs, clean_warnings, open_for_cli
from regfast.cli.support import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STATUS_HELP,
    EXIT_USAGE,
    CliParser,
    SkipReport,
    UsageError,
    drop_stdout,
    error_text,
    print_tree,
    problem_note,
    short_path,
    terminal_text,
)
from regfast.hive.forensics import detect_hive_type
from regfast.hive.logs import find_logs, replay
from regfast.io.export import SECOND_OF_NAME, export, export_to_file, skip_reason
from regfast.io.sample import is_sample, write_sample
from regfast.live.transaction import cli_rollback, pending_journals


def _fmt_value(v: regfast.Value) -> str:
    """A value's data on one line for `ls -v` (a decode failure shows inline)."""
    try:
        return _fmt_data(v)
    except ValueError as e:  # e.g. a DWORD that does not hold 4 bytes
        return f"<{e}>"


def _fmt_data(v: regfast.Value) -> str:
    """A value's data on one line; ValueError when it cannot be decoded."""
    data = v.value
    if isinstance(data, bytes):
        head = data[:32].hex(" ")
        return head + (f" ... ({len(data)} bytes)" if len(data) > 32 else "")
    return json.dumps(data, ensure_ascii=False) if isinstance(data, (str, list)) else str(data)


class Progress:
    """A one-line progress bar on stderr, shown only for long work (hives over
    50 MB) and only when stderr is a terminal, so pipes and logs stay clean."""

    THRESHOLD = 50 * 1024 * 1024

    def __init__(self, label: str, size: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.label = label
        self.enabled = size >= self.THRESHOLD and self.stream.isatty()
        self.start = time.perf_counter()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        frac = min(1.0, done / total) if total else 1.0
        bar = "#" * int(frac * 30)
        self.stream.write(
            f"\r{self.label} [{bar:<30}] {frac:6.1%} {done:,}/{total:,} keys {now - self.start:5.1f}s"
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def cmd_info(args: argparse.Namespace) -> int:
    hive, rep = open_for_cli(args.hive, args)
    with hive:
        i = hive.info()
        problems = hive.problems
        try:
            root = hive.root
            ri = root.info()
            root_row = f"{root.name!r}: {ri.subkeys} subkeys, {ri.values} values"
        except regfast.RegistryCorruptError as e:  # tolerant open of a hive without a usable root
            root_row = f"UNUSABLE: {e.strerror}"
        try:  # skip: a damaged subtree must not hide the count of the rest
            n_bad = hive.scan(errors="skip").stats()["malformed_values"]
            malformed = (
                f"{n_bad:,} values (DWORD/QWORD sizes not fitting the type; decoded as winreg)"
                if n_bad
                else "0 values"
            )
        except regfast.RegistryError as e:
            malformed = f"not counted: {e.strerror}"
        dirty = ""
        if rep.dirty:
            dirty = (
                "  (DIRTY: replayed from the logs)"
                if rep.applied
                else "  (DIRTY: newest changes may be in the .LOG1/.LOG2 files)"
            )
        rows = [
            ("file", args.hive),
            ("format", f"regf {i.version[0]}.{i.version[1]}"),
            ("stored name", i.file_name or "-"),
            ("hive type", str(detect_hive_type(hive))),
            ("last written", _filetime_text(i.last_write)),
            ("sequence", f"{rep.sequence[0]} / {rep.sequence[1]}" + dirty),
            ("checksum", "ok" if rep.checksum_ok else "MISMATCH"),
            ("logs", rep.summary()),
            ("size", f"{i.file_size:,} bytes, {i.hbins_found:,} of hbins"),
            ("cells", f"{i.cells_allocated:,} allocated, {i.cells_free:,} free"),
            ("root key", root_row),
            ("malformed", malformed),
        ]
        if args.tolerant:
            total = hive.problems_total
            rows.append(
                (
                    "problems",
                    f"{total:,} damaged spot{'s' * (total != 1)} read past (regions, list entries, values)"
                    + (f" (first {len(problems):,} kept)" if total > len(problems) else ""),
                )
            )
            for p in problems[:_SHOWN_PROBLEMS]:
                rows.append(("", f"0x{p.offset:x} +0x{p.length:x} {p.kind}: {p.reason}"))
            if len(problems) > _SHOWN_PROBLEMS:
                rows.append(("", f"... {len(problems) - _SHOWN_PROBLEMS:,} more"))
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
    return 0


_SHOWN_PROBLEMS = 5


def _filetime_text(ft: int) -> str:
    when = regfast.filetime_to_datetime(ft)
    return when.isoformat() if when is not None else f"out of range (FILETIME 0x{ft:016x})"


def cmd_recover(args: argparse.Namespace) -> int:

    if args.journal or args.pending:  # regfast.transaction journals: undo them in the live registry
        return cli_rollback(
            list(args.journal or []),
            force_pending=args.force,
            pending=[str(p) for p in pending_journals()] if args.pending else [],
        )
    if not args.hive or not args.output:
        raise UsageError("recover needs HIVE and -o OUTPUT (or --journal FILE)")
    if os.path.exists(args.output):
        for p in [args.hive, *(args.log or find_logs(args.hive))]:
            if os.path.exists(p) and os.path.samefile(p, args.output):
                raise UsageError(f"refusing to overwrite {p!r}, an input of the recovery")
        if not args.force:
            raise UsageError(f"{args.output!r} exists (use --force to replace it)")
    buf, rep = replay(args.hive, args.log or "auto", mode=args.mode)
    print(f"logs: {rep.summary()}", file=sys.stderr)
    for w in rep.warnings:
        print(f"regfast: warning: {w}", file=sys.stderr)
    if buf is None:
        regfast.Hive.from_file(args.hive).close()  # not a hive and no log to rebuild it: say so (1)
        if rep.dirty:
            print(
                f"regfast: error: {args.hive} is dirty and nothing could be replayed "
                f"({rep.stop_reason}); no file written",
                file=sys.stderr,
            )
            return EXIT_ERROR
        print("regfast: nothing replayed; no file written", file=sys.stderr)
        return EXIT_OK
    try:
        with memoryview(buf) as mv, mv[: rep.image_size] as image:
            clean = not rep.zero_filled
            try:
                # every hbin checked, not just the root's (a lazy open's): a
                # hive bin the replay zero-filled must be found here
                with regfast.Hive.from_buffer(image) as check:
                    check.validate()
            except regfast.RegistryError as e:
                clean = False
                print(
                    f"regfast: warning: the replayed hive does not open cleanly: {e.strerror}",
                    file=sys.stderr,
                )
            with atomic_output(args.output, "wb") as f:
                f.write(image)
    finally:
        if hasattr(buf, "close"):
            buf.close()
    print(f"wrote {args.output}: {rep.image_size:,} bytes, sequence {rep.last_sequence}", file=sys.stderr)
    if clean:
        return EXIT_OK
    # written all the same (what could be replayed is worth keeping), but
    # exit 1: hive bins were lost or the result is damaged (the warnings say)
    print(
        f"regfast: error: {args.output} is written but not whole: hive bins were zero-filled or it "
        "does not validate (see the warnings above)",
        file=sys.stderr,
    )
    return EXIT_ERROR


def cmd_ls(args: argparse.Namespace) -> int:
    if args.depth is not None and args.depth < 0:
        raise UsageError("--depth must be 0 or more")
    with open_for_cli(args.hive, args)[0] as hive:
        problem_note(hive)
        key = hive.open(args.path) if args.path else hive.root
        levels = None if args.recursive and args.depth is None else (1 if args.depth is None else args.depth)
        print(("\\" + key.path) if key.path else "\\")
        skips = SkipReport()
        print_tree(key, levels, args.values, args.tolerant, skips, _fmt_value)
        skips.report(f"{skips.total:,} damaged spot{'s' * (skips.total != 1)} not listed")
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    with open_for_cli(args.hive, args)[0] as hive:
        v = hive.open(args.path).value(args.value)
        if not v.well_formed:
            print(
                f"regfast: warning: {args.value!r} is {type_name(v.type)} but holds {v.size} bytes; "
                "decoded as winreg does (--raw has the bytes)",
                file=sys.stderr,
            )
        if args.raw:
            sys.stdout.buffer.write(v.raw())
        else:
            # exit non-zero only when no value could be printed
            try:
                text = _fmt_data(v)
            except ValueError as e:
                raise ValueError(
                    f"cannot decode {type_name(v.type)} value {args.value!r}: {e} (--raw prints its bytes)"
                ) from e
            print(f"{type_name(v.type)} {text}")
    return EXIT_OK


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def cmd_export(args: argparse.Namespace) -> int:
    to_stdout = args.output in (None, "-")
    if to_stdout and args.format == "reg":
        raise UsageError(".reg output is UTF-16LE; give -o FILE")
    if not to_stdout and _same_file(args.hive, args.output):
        raise UsageError(f"refusing to overwrite {args.output!r}, the hive being exported")
    with open_for_cli(args.hive, args)[0] as hive:
        problem_note(hive)
        skip = "skip" if args.tolerant else "strict"
        prefix = args.prefix
        if prefix is None:
            stem = os.path.splitext(os.path.basename(args.hive))[0].upper()
            prefix = f"HKEY_LOCAL_MACHINE\\{stem}" if args.format == "reg" else ""
        progress = Progress("export", os.path.getsize(args.hive))
        if to_stdout:
            res = export(
                hive,
                sys.stdout,
                args.format,
                args.path or None,
                prefix=prefix,
                progress=progress,
                errors=skip,
            )
        else:
            res = export_to_file(
                hive,
                args.output,
                args.format,
                args.path or None,
                prefix=prefix,
                progress=progress,
                errors=skip,
            )
        where = "" if to_stdout else f" to {args.output}"
        if res.skipped or not to_stdout:
            print(f"exported {res.keys:,} keys and {res.values:,} values{where}", file=sys.stderr)
        if res.skipped:
            skips = SkipReport()
            for i, sk in enumerate(res.skipped):
                if i >= skips.shown:  # counted, not described: skip_reason reads the hive
                    skips.add("")
                    continue
                where = (
                    f"{short_path(sk.path)} (nk at 0x{sk.offset:x}): subkeys or values left out"
                    if sk.kind == "key"
                    else f"{short_path(sk.path)} value {sk.name!r} (vk at 0x{sk.offset:x})"
                    if sk.name is not None
                    else f"{short_path(sk.path)} a value (vk at 0x{sk.offset:x})"
                )
                skips.add(f"{where}: {skip_reason(hive, sk)}")
            second = sum(1 for sk in res.skipped if sk.status == SECOND_OF_NAME)
            damaged = res.skipped_values - second
            skips.report(
                f"skipped what could not be read: {res.skipped_keys:,} damaged "
                f"key{'s' * (res.skipped_keys != 1)} (subkeys or values left out), "
                f"{damaged:,} damaged value{'s' * (damaged != 1)}"
                + (
                    f"; and {second:,} value{'s' * (second != 1)} a .reg file cannot hold beside an earlier "
                    "one of its name"
                    if second
                    else ""
                )
            )
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    # a tolerant open is for damaged hives: skip damaged keys unless told otherwise
    errors = args.errors or ("skip" if args.tolerant else "strict")
    with open_for_cli(args.hive, args)[0] as hive:
        size = os.path.getsize(args.hive)
        problem_note(hive)
        t0 = time.perf_counter()
        table = hive.scan(
            args.path or None, errors=errors, progress=Progress("scan", size), include_deleted=args.deleted
        )
        elapsed = time.perf_counter() - t0
        stats = table.stats()
    print(
        f"{stats['keys']:,} keys, {stats['values']:,} values, max depth {stats['max_depth']}, "
        f"{stats['data_bytes']:,} bytes of value data"
    )
    print(
        f"scanned {size / 1e6:.1f} MB in {elapsed * 1e3:.1f} ms ({size / 1e9 / max(elapsed, 1e-9):.2f} GB/s)"
    )
    if stats["key_errors"] or stats["value_errors"]:
        print(f"skipped: {stats['key_errors']} damaged keys, {stats['value_errors']} damaged values")
    if args.deleted:
        print(
            f"deleted: {stats['deleted_keys']:,} keys, {stats['deleted_values']:,} values recovered "
            "from free and unreferenced space"
        )
    if args.stats:
        for t, c in sorted(stats["types"].items(), key=lambda kv: -kv[1]):
            print(f"  {type_name(t):<32} {c:>12,}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    if os.path.isfile(args.out) and not args.force:
        # the same sample again changes nothing (the README's command may run
        # twice); any other file there is someone's (a FIFO or a device is an
        # output the caller chose: written into, as before)
        if is_sample(args.out):
            print(f"sample hive {args.out} is already there")
            return 0
        raise UsageError(f"{args.out!r} exists (use --force to replace it)")
    write_sample(args.out)
    print(f"wrote sample hive {args.out}")
    return 0


def _add_hive_arguments(s: argparse.ArgumentParser, *, damaged: bool = True) -> None:
    """The HIVE argument and the options every command that opens a hive file
    shares (one place, so a new common option is one line)."""
    s.add_argument("hive", help="the hive file")
    add_no_logs(s)
    if damaged:
        s.add_argument(
            "--lenient", action="store_true", help="(superseded by --tolerant) keep the good prefix"
        )
        s.add_argument(
            "--tolerant",
            action="store_true",
            help="forensic open of a damaged hive: skip bad hbins/cells and list them",
        )


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(
        prog="regfast",
        description="Fast Windows Registry hive tool",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"regfast {regfast.__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("info", help="base block facts: version, dirty, logs, type, checksum, sizes")
    _add_hive_arguments(s)
    s.set_defaults(func=cmd_info)

    s = sub.add_parser(
        "recover",
        help="replay the transaction logs into a new, clean hive file; "
        "or (--journal) roll back a regfast.transaction left by a crash",
    )
    s.add_argument("hive", nargs="?")
    s.add_argument("-o", "--output", help="the recovered hive (never the input)")
    s.add_argument(
        "--journal",
        action="append",
        metavar="FILE",
        help="a regfast.transaction journal to roll back in the live registry (repeatable)",
    )
    s.add_argument(
        "--pending",
        action="store_true",
        help="roll back every journal left in the default journal directory, except those "
        "whose process still runs on this host or ran on another (see --force)",
    )
    s.add_argument("--log", action="append", help="a log file (repeatable; default: HIVE.LOG, .LOG1, .LOG2)")
    s.add_argument(
        "--mode",
        choices=["forensic", "windows"],
        default="forensic",
        help="windows: replay dirty hives only (forensic: also newer entries of a clean hive)",
    )
    s.add_argument(
        "--force",
        action="store_true",
        help="replace an existing output file; with --pending: "
        "also roll back journals whose process seems to run (a reused pid) or ran on another host",
    )
    s.set_defaults(func=cmd_recover)

    s = sub.add_parser("ls", help="list subkeys (and values with -v)")
    _add_hive_arguments(s)
    s.add_argument("path", nargs="?", default="")
    s.add_argument("-r", "--recursive", action="store_true")
    s.add_argument("-d", "--depth", type=int, help="levels to descend (with -r: a limit)")
    s.add_argument("-v", "--values", action="store_true", help="show values too")
    s.set_defaults(func=cmd_ls)

    s = sub.add_parser("get", help="print one value")
    _add_hive_arguments(s, damaged=False)
    s.add_argument("path")
    s.add_argument("value", help='value name ("" for the default value)')
    s.add_argument("--raw", action="store_true", help="write the raw bytes to stdout")
    s.set_defaults(func=cmd_get)

    s = sub.add_parser("export", help="export a subtree as .reg, JSON or CSV")
    _add_hive_arguments(s)
    s.add_argument("path", nargs="?", default="")
    s.add_argument("--format", "-f", choices=["reg", "json", "csv"], default="reg")
    s.add_argument(
        "-o",
        "--output",
        help="output file, written whole or not at all (- or omitted: stdout; .reg needs a file)",
    )
    s.add_argument(
        "--prefix", help=r"root to put before key paths (.reg default: HKEY_LOCAL_MACHINE\<FILE STEM>)"
    )
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("scan", help="read every key and value in one pass; print counts and speed")
    _add_hive_arguments(s)
    s.add_argument("path", nargs="?", default="")
    s.add_argument("--stats", action="store_true", help="value counts per type")
    s.add_argument(
        "--errors",
        choices=["strict", "skip"],
        default=None,
        help="skip: count damaged keys/values and go on (default: strict; skip with --tolerant)",
    )
    s.add_argument(
        "--deleted",
        action="store_true",
        help="also count deleted keys/values carved from free and unreferenced cells",
    )
    s.set_defaults(func=cmd_scan)

    s = sub.add_parser("sample", help="write a small SOFTWARE-like sample hive")
    s.add_argument("out")
    s.add_argument("--force", action="store_true", help="replace an existing file")
    s.set_defaults(func=cmd_sample)

    cli_diff.add_cli_parser(sub)  # `diff`
    sub.choices["diff"].set_defaults(error_status=EXIT_USAGE)  # diff(1): 1 means "they differ"
    cli_live.add_cli_parser(sub)  # `agent-path`, `save-key`, `key-security`
    cli_profile.add_cli_parser(sub)  # `profile -- python script.py`
    cli_fleet.add_cli_parser(sub)  # `scan-many DIR -o out/`
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the exit status (see EXIT_STATUS_HELP).

    Argument errors exit with status 2 through argparse. Set
    REGFAST_TRACEBACK=1 to let unexpected exceptions through (debugging).
    """
    args = build_parser().parse_args(argv)
    failed = getattr(args, "error_status", EXIT_ERROR)
    try:
        with terminal_text(), clean_warnings():
            status: int = args.func(args)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        drop_stdout()
        # the reader took what it wanted: not a failure (diff keeps the
        # same/different answer it had when the pipe closed)
        return int(getattr(args, "status_so_far", EXIT_OK))
    except KeyboardInterrupt:
        print("regfast: error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as e:
        print(f"regfast: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:
        if os.environ.get("REGFAST_TRACEBACK"):
            raise
        line = error_text(
            e,
            has_tolerant_flag=hasattr(args, "tolerant"),
            has_errors_flag=hasattr(args, "errors"),
            tolerant_flag=getattr(args, "tolerant_flag", None),
        )
        print(f"regfast: error: {line}", file=sys.stderr)
        return failed


if __name__ == "__main__":
    sys.exit(main())
