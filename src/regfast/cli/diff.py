"""``regfast diff HIVE_A HIVE_B [PATH]``: :func:`regfast.diff` on the command
line, with diff(1)'s exit statuses."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from regfast.cli.logs import open_for_cli
from regfast.cli.support import error_text, problem_note
from regfast.exceptions import RegistryError
from regfast.hive.compare import diff
from regfast.hive.diff import Diff

__all__ = ["add_cli_parser", "run_cli"]


def run_cli(args: Any) -> int:
    """`regfast diff HIVE_A HIVE_B [PATH] [--json] [--no-touched] [--tolerant]`:
    exit status 0 when the subtrees are the same, 1 when they differ, 2 on an
    error (as diff(1) does). With --tolerant, damaged hives are compared as
    far as they can be read, and each key not fully read is named on stderr;
    when nothing read differs but some keys could not be compared, the
    status is 2, not 0: "the same" is not known (a script's `diff && ...`
    must not take it for sameness)."""
    try:
        d, replayed = _diff_for_cli(args)
    except RegistryError as e:
        print(f"regfast: error: {error_text(e, has_tolerant_flag=True)}", file=sys.stderr)
        return 2
    status = 1 if d else 2 if d.damaged else 0
    args.status_so_far = status  # regfast.cli.commands.main's answer if the output pipe closes early
    _warn_damaged(d.damaged, args)
    if d.roots is not None:
        print(
            f"regfast: note: {d.root} is {d.roots[0]} in {os.path.basename(args.hive_a)} and "
            f"{d.roots[1]} in {os.path.basename(args.hive_b)}: those two keys are compared",
            file=sys.stderr,
        )
    if args.json:
        json.dump(
            {
                "root": d.root,
                **({"roots": {"old": d.roots[0], "new": d.roots[1]}} if d.roots is not None else {}),
                "summary": d.summary(),
                "changes": d.to_list(),
                "damaged": [{"side": side, "path": path} for side, path in d.damaged],
            },
            sys.stdout,
            ensure_ascii=False,
            indent=1,
        )
        sys.stdout.write("\n")
    else:
        for c in d:
            print(c.describe())
        print(
            d.summary()
            + (
                f" (after replaying the logs of {' and '.join(replayed)}; --no-logs "
                "compares the files as stored)"
                if replayed
                else ""
            ),
            file=sys.stderr,
        )
    return status


_DAMAGED_SHOWN = 10


def _warn_damaged(damaged: list[tuple[str, str]], args: Any) -> None:
    """One stderr line per key that could not be fully read (a tolerant
    open's damage; a value name twice, a class name or security descriptor
    that does not read, whatever the open): up to ten, then a count. Changes
    there may be the damage, not an edit."""
    sides = {"old": args.hive_a, "new": args.hive_b}
    for side, path in damaged[:_DAMAGED_SHOWN]:
        print(
            f"regfast: warning: {side} side ({os.path.basename(sides[side])}): damaged subkeys, values, "
            f"class name or security under {path or '(the root)'} not compared; changes there may come "
            "from the damage",
            file=sys.stderr,
        )
    if len(damaged) > _DAMAGED_SHOWN:
        print(f"regfast: warning: ... and {len(damaged) - _DAMAGED_SHOWN} more damaged keys", file=sys.stderr)


def _diff_for_cli(args: Any) -> tuple[Diff, list[str]]:
    """diff() of two hive files opened as every command opens them: logs
    replayed unless --no-logs, each side's replay said on stderr (two
    sides silently replayed to the same state would otherwise read as "no
    differences"). Returns the Diff and the sides whose logs were replayed."""
    replayed = []
    a, rep_a = open_for_cli(args.hive_a, args, label="old side")
    try:
        problem_note(a, "old side")
        b, rep_b = open_for_cli(args.hive_b, args, label="new side")
        try:
            problem_note(b, "new side")
            for path, rep in ((args.hive_a, rep_a), (args.hive_b, rep_b)):
                if rep.applied:
                    replayed.append(os.path.basename(path))
            return diff(a, b, args.path or None, touched=not args.no_touched), replayed
        finally:
            b.close()
    finally:
        a.close()


def add_cli_parser(sub: Any) -> None:
    """Registers the `diff` subcommand on an argparse subparsers object."""
    s = sub.add_parser("diff", help="what differs between the same subtree of two hives")
    s.add_argument("hive_a", help="the older hive")
    s.add_argument("hive_b", help="the newer hive")
    s.add_argument("path", nargs="?", default="", help="subtree to compare (default: all)")
    s.add_argument("--json", action="store_true", help="print the changes as JSON")
    s.add_argument(
        "--no-touched", action="store_true", help="do not report keys whose last-write time alone differs"
    )
    s.add_argument(
        "--no-logs",
        action="store_true",
        help="compare the files as stored: do not replay their transaction logs",
    )
    s.add_argument(
        "--tolerant",
        action="store_true",
        help="forensic open of damaged hives: compare what can be read, name the keys that could not "
        "be fully read (no difference seen but such keys: exit status 2)",
    )
    s.set_defaults(func=run_cli)
