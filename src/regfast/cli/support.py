"""What every ``regfast`` command shares: the exit statuses, the one-line
error for any exception, text the terminal can always print, reports of the
damage a tolerant command read past, and the key tree of ``ls``.

Kept apart from :mod:`regfast.cli.commands` (the argument parser and the commands),
so that the commands read as what they do.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import regfast
from regfast._types import type_name

__all__ = [
    "EXIT_OK",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "EXIT_STATUS_HELP",
    "UsageError",
    "CliParser",
    "SkipReport",
    "short_path",
    "print_tree",
    "error_text",
    "cli_advice",
    "problem_note",
    "terminal_text",
    "drop_stdout",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

_MAX_DEPTH = 512  # Windows refuses key paths deeper than this

EXIT_STATUS_HELP = """\
exit status:
  0    success (also when the reader of the output goes away: regfast ls -r HIVE | head)
  1    the hive, a file or its data could not be read or written (one "regfast: error:" line)
  2    usage error, or a request refused (.reg to stdout, output over the input)
  130  interrupted (Ctrl-C); an unfinished export or recovery leaves no file
  recover: 1 also when it wrote a hive that is not whole (hive bins zero-filled, or it
       does not validate): the file is kept, the warnings say what is missing
  diff follows diff(1): 0 same, 1 different, 2 error (also: nothing read differs but
       damaged keys could not be compared: --tolerant, or a key holding two values of one name)
  scan-many: 1 when any hive could not be read or its rows written; the dataset is
       written all the same (its error rows and _scan_many.json's "failed" say which)

text output escapes what the terminal cannot encode (a lone UTF-16 surrogate in a
name shows as \\udXXX); exports: .reg keeps it exactly, JSON as \\udXXX, CSV as \\udXXX text
"""


class UsageError(Exception):
    """A request the command refuses before touching anything (exit status 2)."""


class SkipReport:
    """What a tolerant command read past, reported on stderr at the end (one
    line per spot, the first few in full), so that nothing is dropped
    silently. `shown` spots are listed, the rest counted."""

    shown = 10

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.total = 0

    def add(self, line: str) -> None:
        self.total += 1
        if len(self.lines) < self.shown:
            self.lines.append(line)

    def report(self, what: str) -> None:
        if not self.total:
            return
        print(f"regfast: warning: {what}:", file=sys.stderr)
        for line in self.lines:
            print(f"  {line}", file=sys.stderr)
        if self.total > len(self.lines):
            print(f"  ... {self.total - len(self.lines):,} more", file=sys.stderr)


def short_path(path: str, width: int = 100) -> str:
    """A key path for a report line: the root as "(root)", a very long one
    (a hive 512 levels deep) with its middle left out."""
    if not path:
        return "(root)"
    if len(path) <= width:
        return path
    return path[: width // 3] + "\\...\\" + path[-(width - width // 3) :]


def _depth_error(key: regfast.Key) -> regfast.RegistryCorruptError:
    """Windows' 512-level limit as the scan reports it: corruption at the nk."""
    off = key.hive.token_offset(key.offset)
    return regfast.RegistryCorruptError(
        errno.EIO,
        f"nk at 0x{off:x}: subkeys deeper than {_MAX_DEPTH} levels (Windows' limit) (hive offset 0x{off:x})",
        offset=off,
    )


def print_tree(
    start: regfast.Key,
    levels: int | None,
    values: bool,
    tolerant: bool,
    skips: SkipReport,
    fmt_value: Callable[[regfast.Value], str],
) -> None:
    """Prints the subtree under `start` (`levels` deep, None: all of it);
    `fmt_value` gives a value's data on one line.

    An explicit stack, not recursion: a hive may nest keys far deeper than
    Python's recursion limit. Keys deeper than Windows' 512 levels are
    corruption: strict raises at the nk of the key whose subkeys are too
    deep, tolerant prints what lies above and reports the spot."""
    base = start.path.count("\\") + 1 if start.path else 0
    stack: list[tuple[regfast.Key, int]] = [(start, 0)]
    while stack:
        key, level = stack.pop()
        indent = "  " * (level + 1)
        if level:
            print(f"{'  ' * level}{key.name}\\")
        if values:
            try:
                vals = list(key.values())
            except regfast.RegistryCorruptError as e:
                if not tolerant:
                    raise
                print(f"{indent}<damaged values: {e.strerror}>")
                skips.add(f"values of {short_path(key.path)}: {e.strerror}")
                vals = []
            for v in vals:
                try:
                    text = fmt_value(v)
                except regfast.RegistryCorruptError as e:  # damaged big data
                    if not tolerant:
                        raise
                    text = f"<damaged: {e.strerror}>"
                    skips.add(f"value {v.name!r} of {short_path(key.path)}: {e.strerror}")
                print(f"{indent}{v.name or '(default)'} = {type_name(v.type)} {text}")
        if levels is not None and level >= levels:
            continue
        try:
            children = list(key.subkeys())
        except regfast.RegistryCorruptError as e:
            if not tolerant:
                raise
            # a damaged hive read tolerantly: say what is missing here, go on elsewhere
            print(f"{indent}<damaged: {e.strerror}>")
            skips.add(f"subkeys of {short_path(key.path)}: {e.strerror}")
            continue
        if children and base + level + 1 > _MAX_DEPTH:
            err = _depth_error(key)
            if not tolerant:
                raise err
            print(f"{indent}<damaged: {err.strerror}>")
            skips.add(f"subkeys of {short_path(key.path)}: {err.strerror}")
            continue
        stack.extend((child, level + 1) for child in reversed(children))


def problem_note(hive: regfast.Hive, label: str | None = None) -> None:
    """One stderr line when a tolerant open skipped damage, so that output
    read from a damaged hive is never mistaken for the whole hive. `label`
    names the hive when a command reads two ("old side")."""
    total = hive.problems_total
    if total:
        print(
            f"regfast: warning: {label + ': ' if label else ''}{total:,} damaged "
            f"spot{'s' * (total != 1)} read past (regfast info --tolerant lists them)",
            file=sys.stderr,
        )


class CliParser(argparse.ArgumentParser):
    """argparse with regfast's error line: usage, then one 'regfast: error:'
    line, exit status 2 (subcommand parsers inherit the class)."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"regfast: error: {message}\n")


def _fname(name: object) -> str:
    return os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else str(name)


# The library's corruption errors name the API's way out (regf_with_fix: a
# tolerant open, or errors="skip" for a hive opened so); on the command line
# the same advice is a flag.
_API_TOLERANT_HINT = 'open the hive with errors="tolerant" to read the rest'
_API_SKIP_HINT = 'scan or walk with errors="skip" to go on past it'


def cli_advice(msg: str, *, tolerant: str | None = None, skip: str | None = None) -> str:
    """`msg` with the library's advice given as this command's flags:
    errors="tolerant" as `tolerant` (say "--tolerant"), errors="skip" as
    `skip` ("--errors skip"). A command without --tolerant (`tolerant` None)
    names the commands that have it; skip advice without a flag stays as is."""
    if tolerant:
        msg = msg.replace(_API_TOLERANT_HINT, f"rerun with {tolerant} to read the rest")
    else:  # (a command without the flag: name the commands that have it, not the Python API)
        msg = msg.replace(_API_TOLERANT_HINT, "ls, export and scan --tolerant read the rest")
    if skip:
        msg = msg.replace(_API_SKIP_HINT, f"rerun with {skip} to go on past it")
    return msg


def error_text(
    e: BaseException,
    *,
    has_tolerant_flag: bool = False,
    has_errors_flag: bool = False,
    tolerant_flag: str | None = None,
) -> str:
    """One line for an exception: what failed, where, the Win32 code.

    `has_tolerant_flag` / `has_errors_flag`: the command takes --tolerant /
    --errors, so the library's advice to pass errors="tolerant" / "skip" is
    given as that flag instead; `tolerant_flag` names a command's own way to
    read tolerantly when it is not --tolerant (scan-many: --errors tolerant)."""
    if isinstance(e, regfast.RegistryError):
        msg = cli_advice(
            str(e.strerror or e),
            tolerant=tolerant_flag or ("--tolerant" if has_tolerant_flag else None),
            skip="--errors skip" if has_errors_flag else None,
        )
        if e.offset is not None and f"0x{e.offset:x}" not in msg:
            msg += f" at hive offset 0x{e.offset:x}"
        if e.winerror is not None:
            msg += f" (winerror {e.winerror})"
        if e.filename and _fname(e.filename) not in msg:
            msg += f": {_fname(e.filename)}"
    elif isinstance(e, OSError):
        msg = str(e.strerror or e)
        if e.filename is not None and _fname(e.filename) not in msg:
            msg += f": {_fname(e.filename)}"
        if e.filename2 is not None:
            msg += f" -> {_fname(e.filename2)}"
    elif isinstance(e, MemoryError):
        msg = "out of memory"
    elif isinstance(e, (ValueError, UnicodeError, OverflowError)):
        msg = str(e)
    else:  # a bug of regfast's: still one line, with the exception's type for the report
        msg = f"unexpected {type(e).__name__}: {e} (set REGFAST_TRACEBACK=1 for the traceback)"
    return " ".join(msg.split())  # one line, whatever the message holds


@contextlib.contextmanager
def terminal_text() -> Iterator[None]:
    """stdout with errors="backslashreplace" while a command runs: a name
    holding a lone UTF-16 surrogate prints as \\udXXX instead of failing."""
    out: Any = sys.stdout
    old = getattr(out, "errors", None)
    try:
        out.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError, OSError):
        old = None
    try:
        yield
    finally:
        if old is not None:
            with contextlib.suppress(AttributeError, ValueError, OSError):
                out.reconfigure(errors=old)


def drop_stdout() -> None:
    """After a broken pipe: point stdout at the null device, so the flush at
    exit does not fail again ("Exception ignored ... BrokenPipeError")."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, AttributeError, ValueError):
        pass
