"""The ``regfast`` command line."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Sequence

import regfast
from regfast._types import type_name


def _fmt_value(v: regfast.Value) -> str:
    try:
        data = v.value
    except ValueError as e:  # e.g. a DWORD that does not hold 4 bytes
        return f"<{e}>"
    if isinstance(data, bytes):
        head = data[:32].hex(" ")
        return head + (f" ... ({len(data)} bytes)" if len(data) > 32 else "")
    return json.dumps(data, ensure_ascii=False) if isinstance(data, (str, list)) else str(data)


class Progress:
    """A one-line progress bar on stderr, shown only for long work (hives over
    50 MB) and only when stderr is a terminal, so pipes and logs stay clean."""

    THRESHOLD = 50 * 1024 * 1024

    def __init__(self, label: str, size: int, stream=None) -> None:
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
        self.stream.write(f"\r{self.label} [{bar:<30}] {frac:6.1%} {done:,}/{total:,} keys "
                          f"{now - self.start:5.1f}s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def cmd_info(args: argparse.Namespace) -> int:
    from regfast.forensics import detect_hive_type

    hive, rep = regfast.recover(args.hive, None if args.no_logs else "auto", lenient=args.lenient,
                                errors=_open_errors(args))
    with hive:
        i = hive.info()
        problems = hive.problems
        try:
            root = hive.root
            ri = root.info()
            root_row = f"{root.name!r}: {ri.subkeys} subkeys, {ri.values} values"
        except regfast.RegistryCorruptError as e:   # tolerant open of a hive without a usable root
            root_row = f"UNUSABLE: {e.strerror}"
        dirty = ""
        if rep.dirty:
            dirty = ("  (DIRTY: replayed from the logs)" if rep.applied else
                     "  (DIRTY: newest changes may be in the .LOG1/.LOG2 files)")
        rows = [
            ("file", args.hive),
            ("format", f"regf {i.version[0]}.{i.version[1]}"),
            ("stored name", i.file_name or "-"),
            ("hive type", str(detect_hive_type(hive))),
            ("last written", regfast.filetime_to_datetime(i.last_write).isoformat()),
            ("sequence", f"{rep.sequence[0]} / {rep.sequence[1]}" + dirty),
            ("checksum", "ok" if rep.checksum_ok else "MISMATCH"),
            ("logs", rep.summary()),
            ("size", f"{i.file_size:,} bytes, {i.hbins_found:,} of hbins"),
            ("cells", f"{i.cells_allocated:,} allocated, {i.cells_free:,} free"),
            ("root key", root_row),
        ]
        if args.tolerant:
            total = hive.problems_total
            rows.append(("problems", f"{total:,} damaged region{'s' * (total != 1)} skipped"
                         + (f" (first {len(problems):,} kept)" if total > len(problems) else "")))
            for p in problems[:_SHOWN_PROBLEMS]:
                rows.append(("", f"0x{p.offset:x} +0x{p.length:x} {p.kind}: {p.reason}"))
            if len(problems) > _SHOWN_PROBLEMS:
                rows.append(("", f"... {len(problems) - _SHOWN_PROBLEMS:,} more"))
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
    return 0


_SHOWN_PROBLEMS = 5


def _open_errors(args: argparse.Namespace) -> str:
    """The open mode the --tolerant flag asks for."""
    return "tolerant" if getattr(args, "tolerant", False) else "strict"


def _problem_note(hive: regfast.Hive) -> None:
    """One stderr line when a tolerant open skipped damage, so that output
    read from a damaged hive is never mistaken for the whole hive."""
    total = hive.problems_total
    if total:
        print(f"regfast: warning: {total:,} damaged region{'s' * (total != 1)} skipped "
              "(regfast info --tolerant lists them)", file=sys.stderr)


def cmd_recover(args: argparse.Namespace) -> int:
    from regfast.logs import find_logs, replay

    if args.journal or args.pending:   # regfast.transaction journals: undo them in the live registry
        from regfast.transaction import cli_rollback, pending_journals
        return cli_rollback(list(args.journal or []), force_pending=args.force,
                            pending=[str(p) for p in pending_journals()] if args.pending else [])
    if not args.hive or not args.output:
        print("regfast: recover needs HIVE and -o OUTPUT (or --journal FILE)", file=sys.stderr)
        return 2
    if os.path.exists(args.output):
        for p in [args.hive, *(args.log or find_logs(args.hive))]:
            if os.path.exists(p) and os.path.samefile(p, args.output):
                print(f"regfast: refusing to overwrite {p!r}, an input of the recovery", file=sys.stderr)
                return 2
        if not args.force:
            print(f"regfast: {args.output!r} exists (use --force to replace it)", file=sys.stderr)
            return 2
    buf, rep = replay(args.hive, args.log or "auto", mode=args.mode)
    print(f"logs: {rep.summary()}", file=sys.stderr)
    if buf is None:
        print("regfast: nothing replayed; no file written", file=sys.stderr)
        return 1 if rep.dirty else 0
    try:
        with memoryview(buf) as mv, mv[:rep.image_size] as image:
            try:
                regfast.Hive.from_buffer(image).close()
            except regfast.RegistryError as e:
                print(f"regfast: warning: the replayed hive does not open cleanly: {e.strerror}",
                      file=sys.stderr)
            tmp = args.output + ".regfast-tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(image)
                os.replace(tmp, args.output)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
    finally:
        if hasattr(buf, "close"):
            buf.close()
    print(f"wrote {args.output}: {rep.image_size:,} bytes, sequence {rep.last_sequence}", file=sys.stderr)
    return 0


def _tree(key: regfast.Key, depth: int, max_depth: int | None, values: bool, indent: str,
          tolerant: bool = False) -> None:
    try:
        if values:
            for v in key.values():
                print(f"{indent}{v.name or '(default)'} = {type_name(v.type)} {_fmt_value(v)}")
        if max_depth is not None and depth >= max_depth:
            return
        children = list(key.subkeys())
    except regfast.RegistryCorruptError as e:
        if not tolerant:
            raise
        # a damaged hive read tolerantly: say what is missing here, go on elsewhere
        print(f"{indent}<damaged: {e.strerror}>")
        return
    for child in children:
        print(f"{indent}{child.name}\\")
        _tree(child, depth + 1, max_depth, values, indent + "  ", tolerant)


def cmd_ls(args: argparse.Namespace) -> int:
    with regfast.open_hive(args.hive, lenient=args.lenient, errors=_open_errors(args)) as hive:
        _problem_note(hive)
        key = hive.open(args.path) if args.path else hive.root
        max_depth = None if args.recursive and args.depth is None else (args.depth or 1)
        print(("\\" + key.path) if key.path else "\\")
        _tree(key, 0, max_depth, args.values, "  ", args.tolerant)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    with regfast.open_hive(args.hive) as hive:
        v = hive.open(args.path).value(args.value)
        if args.raw:
            sys.stdout.buffer.write(v.raw())
        else:
            print(f"{type_name(v.type)} {_fmt_value(v)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from regfast.export import export, export_to_file

    with regfast.open_hive(args.hive, lenient=args.lenient, errors=_open_errors(args)) as hive:
        _problem_note(hive)
        skip = "skip" if args.tolerant else "strict"
        prefix = args.prefix
        if prefix is None:
            stem = os.path.splitext(os.path.basename(args.hive))[0].upper()
            prefix = f"HKEY_LOCAL_MACHINE\\{stem}" if args.format == "reg" else ""
        progress = Progress("export", os.path.getsize(args.hive))
        if args.output in (None, "-"):
            if args.format == "reg":
                print("regfast: .reg output is UTF-16LE; give -o FILE", file=sys.stderr)
                return 2
            n_keys, n_values = export(hive, sys.stdout, args.format, args.path or None, prefix=prefix,
                                      progress=progress, errors=skip)
        else:
            n_keys, n_values = export_to_file(hive, args.output, args.format, args.path or None,
                                              prefix=prefix, progress=progress, errors=skip)
            print(f"exported {n_keys:,} keys and {n_values:,} values to {args.output}", file=sys.stderr)
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from regfast import _bulk  # noqa: F401  (imports numpy now, outside the timed scan)
    from regfast._types import type_name

    size = os.path.getsize(args.hive)
    # a tolerant open is for damaged hives: skip damaged keys unless told otherwise
    errors = args.errors or ("skip" if args.tolerant else "strict")
    with regfast.open_hive(args.hive, lenient=args.lenient, errors=_open_errors(args)) as hive:
        _problem_note(hive)
        t0 = time.perf_counter()
        table = hive.scan(args.path or None, errors=errors, progress=Progress("scan", size),
                          include_deleted=args.deleted)
        elapsed = time.perf_counter() - t0
        stats = table.stats()
    print(f"{stats['keys']:,} keys, {stats['values']:,} values, max depth {stats['max_depth']}, "
          f"{stats['data_bytes']:,} bytes of value data")
    print(f"scanned {size / 1e6:.1f} MB in {elapsed * 1e3:.1f} ms ({size / 1e9 / max(elapsed, 1e-9):.2f} GB/s)")
    if stats["key_errors"] or stats["value_errors"]:
        print(f"skipped: {stats['key_errors']} damaged keys, {stats['value_errors']} damaged values")
    if args.deleted:
        print(f"deleted: {stats['deleted_keys']:,} keys, {stats['deleted_values']:,} values recovered "
              "from free cells")
    if args.stats:
        for t, c in sorted(stats["types"].items(), key=lambda kv: -kv[1]):
            print(f"  {type_name(t):<32} {c:>12,}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from regfast.sample import write_sample

    write_sample(args.out)
    print(f"wrote sample hive {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="regfast", description="Fast Windows Registry hive tool")
    p.add_argument("--version", action="version", version=f"regfast {regfast.__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("info", help="base block facts: version, dirty, logs, type, checksum, sizes")
    s.add_argument("hive")
    s.add_argument("--lenient", action="store_true", help="(superseded by --tolerant) keep the good prefix")
    s.add_argument("--tolerant", action="store_true",
                   help="forensic open of a damaged hive: skip bad hbins/cells and list them")
    s.add_argument("--no-logs", action="store_true", help="do not replay the transaction logs")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("recover", help="replay the transaction logs into a new, clean hive file; "
                                       "or (--journal) roll back a regfast.transaction left by a crash")
    s.add_argument("hive", nargs="?")
    s.add_argument("-o", "--output", help="the recovered hive (never the input)")
    s.add_argument("--journal", action="append", metavar="FILE",
                   help="a regfast.transaction journal to roll back in the live registry (repeatable)")
    s.add_argument("--pending", action="store_true",
                   help="roll back every journal left in the default journal directory, except those "
                        "whose process still runs on this host or ran on another (see --force)")
    s.add_argument("--log", action="append", help="a log file (repeatable; default: HIVE.LOG, .LOG1, .LOG2)")
    s.add_argument("--mode", choices=["forensic", "windows"], default="forensic",
                   help="windows: replay dirty hives only (forensic: also newer entries of a clean hive)")
    s.add_argument("--force", action="store_true", help="replace an existing output file; with --pending: "
                   "also roll back journals whose process seems to run (a reused pid) or ran on another host")
    s.set_defaults(func=cmd_recover)

    s = sub.add_parser("ls", help="list subkeys (and values with -v)")
    s.add_argument("hive")
    s.add_argument("path", nargs="?", default="")
    s.add_argument("-r", "--recursive", action="store_true")
    s.add_argument("-d", "--depth", type=int, help="levels to descend (with -r: a limit)")
    s.add_argument("-v", "--values", action="store_true", help="show values too")
    s.add_argument("--lenient", action="store_true")
    s.add_argument("--tolerant", action="store_true",
                   help="forensic open of a damaged hive: skip bad hbins/cells and list them")
    s.set_defaults(func=cmd_ls)

    s = sub.add_parser("get", help="print one value")
    s.add_argument("hive")
    s.add_argument("path")
    s.add_argument("value", help='value name ("" for the default value)')
    s.add_argument("--raw", action="store_true", help="write the raw bytes to stdout")
    s.set_defaults(func=cmd_get)

    s = sub.add_parser("export", help="export a subtree as .reg, JSON or CSV")
    s.add_argument("hive")
    s.add_argument("path", nargs="?", default="")
    s.add_argument("--format", "-f", choices=["reg", "json", "csv"], default="reg")
    s.add_argument("-o", "--output", help="output file (- or omitted: stdout; .reg needs a file)")
    s.add_argument("--prefix", help=r"root to put before key paths (.reg default: HKEY_LOCAL_MACHINE\<FILE STEM>)")
    s.add_argument("--lenient", action="store_true")
    s.add_argument("--tolerant", action="store_true",
                   help="forensic open of a damaged hive: skip bad hbins/cells and list them")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("scan", help="read every key and value in one pass; print counts and speed")
    s.add_argument("hive")
    s.add_argument("path", nargs="?", default="")
    s.add_argument("--stats", action="store_true", help="value counts per type")
    s.add_argument("--errors", choices=["strict", "skip"], default=None,
                   help="skip: count damaged keys/values and go on (default: strict; skip with --tolerant)")
    s.add_argument("--lenient", action="store_true")
    s.add_argument("--tolerant", action="store_true",
                   help="forensic open of a damaged hive: skip bad hbins/cells and list them")
    s.add_argument("--deleted", action="store_true", help="also count deleted keys/values in free cells")
    s.set_defaults(func=cmd_scan)

    s = sub.add_parser("sample", help="write a small SOFTWARE-like sample hive")
    s.add_argument("out")
    s.set_defaults(func=cmd_sample)

    from regfast.agent import add_cli_parser as add_agent_path  # `agent-path`
    from regfast.diff import add_cli_parser as add_diff          # `diff`
    from regfast.profile import add_cli_parser as add_profile     # `profile -- python script.py`
    from regfast.admin import add_cli_parser as add_admin         # `save-key`, `key-security`
    from regfast.fleet import add_cli_parser as add_scan_many     # `scan-many DIR -o out/`
    add_diff(sub)
    add_agent_path(sub)
    add_profile(sub)
    add_admin(sub)
    add_scan_many(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except regfast.RegistryError as e:
        where = f" at hive offset 0x{e.offset:x}" if e.offset is not None else ""
        print(f"regfast: error: {e.strerror}{where} (winerror {e.winerror})"
              + (f": {e.filename}" if e.filename else ""), file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
