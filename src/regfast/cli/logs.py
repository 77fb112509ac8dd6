"""Log replay made visible on the command line (issue 16 section 6).

Every ``regfast`` command that opens a hive file goes through
:func:`open_for_cli`: it takes ``--no-logs`` (:func:`add_no_logs`), replays
the logs otherwise, and says in one stderr line what happened whenever the
hive is dirty or something was replayed — how many entries from which files,
or why nothing was. Python warnings raised while a command runs print as one
``regfast: warning: ...`` line (:func:`clean_warnings`), not in Python's
``file:line: Category: message`` form.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

from regfast._native import Hive
from regfast.hive.logs import RecoveryReport, recover

__all__ = ["add_no_logs", "open_for_cli", "log_note", "print_log_note", "clean_warnings"]

NO_LOGS_REASON = "not requested (--no-logs)"


def add_no_logs(parser: argparse.ArgumentParser) -> None:
    """Adds ``--no-logs`` to a subcommand that opens hive files."""
    parser.add_argument(
        "--no-logs", action="store_true", help="read the hive as stored: do not replay its transaction logs"
    )


def log_note(report: Any, label: str | None = None) -> tuple[str, str] | None:
    """("note" | "warning", one line) about a replay report, or None when a
    clean hive was read as stored. `label` (e.g. "old side") prefixes it."""
    said = report.note()
    if said is None:
        return None
    level, text = said
    if report.stop_reason == NO_LOGS_REASON and not report.applied:
        text = text.replace(f"logs not replayed: {NO_LOGS_REASON}", "logs not replayed (--no-logs)")
    return level, (f"{label}: {text}" if label else text)


def print_log_note(report: Any, label: str | None = None, stream: TextIO | None = None) -> None:
    """Prints :func:`log_note` as ``regfast: note: ...`` or ``regfast:
    warning: ...`` on stderr (nothing for a clean hive read as stored)."""
    said = log_note(report, label)
    if said is not None:
        print(f"regfast: {said[0]}: {said[1]}", file=stream or sys.stderr)


def open_for_cli(
    path: str, args: argparse.Namespace, *, label: str | None = None, errors: str | None = None
) -> tuple[Hive, RecoveryReport]:
    """Opens `path` for a command: logs replayed unless ``args.no_logs``,
    the one-line note printed. Returns ``(hive, report)``; no
    DirtyHiveWarning is raised (the note says it)."""
    no_logs = bool(getattr(args, "no_logs", False))
    if errors is None:
        errors = "tolerant" if getattr(args, "tolerant", False) else "strict"
    hive, report = recover(
        path, None if no_logs else "auto", lenient=bool(getattr(args, "lenient", False)), errors=errors
    )
    if no_logs:
        report.stop_reason = NO_LOGS_REASON
    print_log_note(report, label)
    return hive, report


def _show(
    message: Any,
    category: type,
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    text = " ".join(str(message).split("\n"))
    print(f"regfast: warning: {text}", file=file or sys.stderr)


@contextlib.contextmanager
def clean_warnings() -> Iterator[None]:
    """While a command runs, warnings print as one ``regfast: warning:``
    line each (the filters still decide which are shown)."""
    with warnings.catch_warnings():
        warnings.showwarning = _show
        yield
