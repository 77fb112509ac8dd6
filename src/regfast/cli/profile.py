"""``regfast profile [--json OUT] -- python script.py args...`` and ``regfast
profile compare BASE NEW``: :class:`regfast.observe.profile.Profiler` on the
command line (see that module for what a profile holds)."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from collections.abc import Sequence
from typing import Any

from regfast._files import atomic_output
from regfast.observe.profile import Profiler, compare

__all__ = ["add_cli_parser", "cmd_profile", "cmd_compare", "main"]


def cmd_profile(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "compare":
        return cmd_compare(cmd[1:])
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if cmd and os.path.basename(cmd[0]).lower().startswith("python"):
        cmd = cmd[1:]  # `python script.py`: the script runs in this interpreter
    if not cmd or (cmd[0] in ("-m", "-c") and len(cmd) < 2):
        print(
            "regfast: profile needs a script: regfast profile [--json OUT] -- python script.py [args] "
            "(or -m module, -c code)",
            file=sys.stderr,
        )
        return 2
    if cmd[0] not in ("-m", "-c") and not os.path.exists(cmd[0]):  # (a directory with __main__.py runs)
        # said before the profiler starts, not after an empty report
        print(f"regfast: error: profile: no such script: {cmd[0]}", file=sys.stderr)
        return 2
    rc = 0
    saved = sys.argv[:]
    prof = Profiler()
    try:
        with prof:
            try:
                if cmd[0] == "-m":
                    sys.argv = cmd[1:]
                    runpy.run_module(cmd[1], run_name="__main__", alter_sys=True)
                elif cmd[0] == "-c":  # as `python -c CODE args`: sys.argv[0] is "-c"
                    sys.argv = ["-c", *cmd[2:]]
                    exec(compile(cmd[1], "<string>", "exec"), {"__name__": "__main__"})
                else:
                    sys.argv = cmd[:]
                    runpy.run_path(cmd[0], run_name="__main__")
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved
        print(prof.report(top=args.top), file=sys.stderr)
        if args.json:
            _write_atomic(args.json, prof.to_json())
            print(f"profile saved to {args.json}", file=sys.stderr)
    return rc


def _write_atomic(path: str, text: str) -> None:
    # all or nothing, and no temporary file left behind when the rename
    # fails (an output path that is a directory); a device is written, not
    # renamed over
    with atomic_output(path, "w", encoding="utf-8") as f:
        f.write(text)


def _load(path: str) -> Profiler:
    with open(path, "rb") as f:  # (bytes: from_json says what a file that is not UTF-8 is)
        return Profiler.from_json(f.read())


def cmd_compare(argv: Sequence[str]) -> int:
    """``regfast profile compare BASE.json NEW.json [thresholds]``: prints what
    got worse; exit 1 when a threshold given is crossed, 2 on bad input."""
    p = argparse.ArgumentParser(
        prog="regfast profile compare", description="what got worse from BASE to NEW; exit 1 past a threshold"
    )
    p.add_argument("base")
    p.add_argument("new")
    p.add_argument(
        "--max-extra-round-trips",
        type=int,
        metavar="N",
        help="fail when NEW makes more than N round trips more than BASE",
    )
    p.add_argument(
        "--max-extra-opens",
        type=int,
        metavar="N",
        help="fail when any key is opened more than N times more often",
    )
    p.add_argument(
        "--no-new-open-each", action="store_true", help="fail on an open-each pattern that is new or grew"
    )
    p.add_argument(
        "--max-slowdown",
        type=float,
        metavar="RATIO",
        help="fail when an operation's median time grows by more than RATIO "
        "(per op, and per op and key; timings are noisy: e.g. 2)",
    )
    p.add_argument(
        "--min-count",
        type=int,
        default=5,
        help="operations needed on both sides to compare their times (default 5)",
    )
    a = p.parse_args(list(argv))
    try:
        base, new = _load(a.base), _load(a.new)
    except (OSError, ValueError) as e:
        print(f"regfast: profile compare: {e}", file=sys.stderr)
        return 2
    comp = compare(base, new, min_count=a.min_count)
    print(comp)
    bad = comp.violations(
        max_extra_round_trips=a.max_extra_round_trips,
        max_extra_opens=a.max_extra_opens,
        no_new_open_each=a.no_new_open_each,
        max_slowdown=a.max_slowdown,
    )
    if bad:
        print("\nTHRESHOLDS CROSSED:", file=sys.stderr)
        for v in bad:
            print(f"  {v}", file=sys.stderr)
        return 1
    return 0


def add_cli_parser(sub: Any) -> None:
    """Registers `profile` on the regfast CLI's subparsers."""
    s = sub.add_parser(
        "profile",
        help="run a Python script with the registry access profiler on "
        "and print the hottest keys and open-each patterns; "
        "`profile compare BASE NEW` compares two saved profiles",
    )
    s.add_argument("--top", type=int, default=10, help="rows per table (default 10)")
    s.add_argument("--json", metavar="OUT", help="also save the profile as JSON (for `profile compare`)")
    s.add_argument(
        "cmd",
        nargs=argparse.REMAINDER,
        help="-- python script.py [args] (or -m module, -c code); or: compare BASE.json NEW.json [...]",
    )
    s.set_defaults(func=cmd_profile)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="regfast profile")
    add_cli_parser(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(["profile", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))
