"""``regfast scan-many DIR_OR_GLOB -o OUT``: a Parquet dataset of many hives
(:func:`regfast.io.fleet.write_parquet_dataset`)."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from typing import Any

from regfast.cli.support import cli_advice
from regfast.io.fleet import ERRORS, expand_paths, write_parquet_dataset

__all__ = ["add_cli_parser", "cmd_scan_many"]


def cmd_scan_many(args: argparse.Namespace) -> int:
    """``regfast scan-many DIR_OR_GLOB -o OUT --format parquet [--workers N]``."""
    spec = args.input
    if args.workers is not None and args.workers < 0:  # a usage error, before walking the input
        print("regfast: error: scan-many: --workers must be >= 0 (0: in this process)", file=sys.stderr)
        return 2
    if not os.path.lexists(spec) and not glob.has_magic(spec):
        print(f"regfast: error: scan-many: no such file or directory: {spec!r}", file=sys.stderr)
        return 2
    left_out: list[str] = []
    paths = expand_paths(spec, left_out=left_out)
    # An output directory inside the input (scan-many case -o case/out): a
    # rerun would scan the last run's Parquet files and summary as hives
    # (junk error rows, and partitions that stay). What this command writes
    # there is no input; anything else in it is (the input may lie inside
    # the output, or be it).
    out_real = os.path.realpath(args.output)
    paths = [p for p in paths if not _ours(p, out_real)]
    left_out = [p for p in left_out if not _ours(p, out_real)]
    if left_out:  # said, not dropped silently: a hive may have lost its signature
        shown = ", ".join(os.path.relpath(p, spec) for p in left_out[:_LEFT_OUT_SHOWN])
        more = f" and {len(left_out) - _LEFT_OUT_SHOWN} more" if len(left_out) > _LEFT_OUT_SHOWN else ""
        print(
            f"regfast: scan-many: {len(left_out)} entr{'y' if len(left_out) == 1 else 'ies'} left out "
            f"(no 'regf' signature, a transaction log without its hive, no regular file, or a link to "
            f"a directory): {shown}{more} "
            "(name a file to scan it anyway)",
            file=sys.stderr,
        )
    if not paths:
        print(f"regfast: scan-many: no hive found in {spec!r}", file=sys.stderr)
        return 2
    base = spec if os.path.isdir(spec) else (os.path.dirname(spec.split("*")[0]) or None)
    t0 = time.perf_counter()
    try:
        results = write_parquet_dataset(
            paths,
            args.output,
            base=base,
            workers=args.workers,
            progress=None if not args.quiet else False,
            overwrite=args.overwrite,
            decode=not args.raw,
            errors=args.errors,
            include_deleted=args.deleted,
        )
    except FileExistsError as e:
        print(f"regfast: scan-many: {e.strerror}", file=sys.stderr)
        return 2
    from regfast.arrow import source_text  # (pyarrow: write_parquet_dataset has imported it)

    secs = time.perf_counter() - t0
    rows = sum(r.rows for r in results)
    failed = [r for r in results if r.error is not None]
    # a hive whose output could not be written has no file, so no row
    unwritten = [r for r in failed if r.output is None and r.rows == 0]
    summary = {
        "hives": len(results),
        "rows": rows,
        "seconds": round(secs, 3),
        "failed": [
            {"source": source_text(r.source), "status": r.status, "error": r.error, "in_dataset": r.rows > 0}
            for r in failed
        ],
        # names as the dataset's source column spells them: a file name that
        # is not UTF-8 cannot go into a UTF-8 file as it is (that failed the
        # whole summary after the scan)
        "left_out": [source_text(p) for p in left_out],
        "warnings": {source_text(r.source): r.warnings for r in results if r.warnings},
    }
    with open(os.path.join(args.output, _SUMMARY), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
    in_rows = len(failed) - len(unwritten)
    print(
        f"{len(results):,} hives, {rows:,} rows in {secs:.1f} s -> {args.output} "
        f"({in_rows} hive(s) with an error row"
        + (f", {len(unwritten)} whose rows could not be written: not in the dataset" if unwritten else "")
        + ")",
        file=sys.stderr,
    )
    for r in failed:  # the library's advice, as this command's flag
        print(f"  {r.source}: {cli_advice(r.error or '', tolerant='--errors tolerant')}", file=sys.stderr)
    # 1 when a hive could not be read or written, as every command says
    # (the dataset is still there: its error rows and the summary say which)
    return 1 if failed else 0


def _ours(path: str, out: str) -> bool:
    """Whether `path` is something a run writing into `out` (a realpath)
    wrote: its summary, or anything in one of its hive=<name> partitions."""
    rel = os.path.relpath(os.path.realpath(path), out)
    first = rel.split(os.sep, 1)[0]
    return not rel.startswith(os.pardir) and (first == _SUMMARY or first.startswith("hive="))


_LEFT_OUT_SHOWN = 5
_SUMMARY = "_scan_many.json"


def add_cli_parser(sub: Any) -> None:
    """Registers ``scan-many`` on the regfast CLI's subparsers."""
    s = sub.add_parser("scan-many", help="scan many hives into a Parquet dataset partitioned by hive")
    s.add_argument("input", help="a directory (walked for hives), a glob pattern or one hive file")
    s.add_argument("-o", "--output", required=True, help="dataset directory (created; must be empty)")
    s.add_argument("--format", choices=["parquet"], default="parquet", help="output format (parquet)")
    s.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs; 0: none)")
    s.add_argument(
        "--errors",
        choices=list(ERRORS),
        default="skip",
        help="skip: unreadable hives become error rows (default); tolerant: also retry "
        "damaged hives in tolerant mode; strict: stop at the first failure",
    )
    s.add_argument("--deleted", action="store_true", help="add deleted keys/values found in free cells")
    s.add_argument("--raw", action="store_true", help="raw bytes in data_bin instead of typed columns")
    s.add_argument("--overwrite", action="store_true", help="replace the hive= partitions of a previous run")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    # the library's advice to read a damaged hive tolerantly, as this command's flag
    s.set_defaults(func=cmd_scan_many, tolerant_flag="--errors tolerant")
