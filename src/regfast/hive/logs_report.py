"""What a log replay did: :class:`RecoveryReport` and :class:`LogReport`.

Plain data, filled in by :mod:`regfast.hive.logs` and read by people (``regfast
info``, the one-line note every CLI command prints for a dirty hive) and by
programs (``regfast.recovery_of(hive)``), which finds the report each open
filed for its hive here (``_REPORTS``).
"""

from __future__ import annotations

import os
import threading
import warnings
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from regfast._native import Hive

__all__ = ["DirtyHiveWarning", "LogReport", "RecoveryReport", "recovery_of"]

BASE_BLOCK_SIZE = 4096


class DirtyHiveWarning(UserWarning):
    """A dirty hive is being read without (all of) its logged changes."""


@dataclass
class LogReport:
    """What replay made of one log file."""

    path: str
    format: str  # "new", "old", "empty", "invalid"
    sequence: int | None = None  # its base block's sequence number
    entries_found: int = 0  # HvLE entries in its run (new format)
    entries_applied: int = 0
    pages_applied: int = 0  # new format: page references; old: 512-byte pages
    first_sequence: int | None = None
    last_sequence: int | None = None
    problem: str | None = None  # why the whole file was refused
    stopped: str | None = None  # why replay of this file ended, or why it was not used

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclass
class RecoveryReport:
    """What happened when a hive was opened with its logs.

    ``dirty``/``sequence``/``checksum_ok`` describe the primary file as it is
    on disk; ``applied`` says whether anything from the logs was replayed;
    ``stop_reason`` why replay stopped (or why it did not happen); each
    :class:`LogReport` in ``logs`` what was applied from that file.
    """

    path: str
    dirty: bool
    sequence: tuple[int, int]
    checksum_ok: bool
    dirty_reasons: list[str] = field(default_factory=list)
    logs: list[LogReport] = field(default_factory=list)
    format: str | None = None  # format of the logs replayed: "new" or "old"
    applied: bool = False
    entries_applied: int = 0
    pages_applied: int = 0
    last_sequence: int | None = None
    stop_reason: str = ""
    hbins_size_before: int = 0
    hbins_size_after: int = 0
    base_block_from_log: bool = False
    newer_than_clean: bool = False  # entries were replayed onto a clean hive (mode="forensic")
    warnings: list[str] = field(default_factory=list)
    # (file offset, length) of each range of the replayed image that neither
    # the primary file nor a log page gave: zeros (a primary cut short)
    zero_filled: list[tuple[int, int]] = field(default_factory=list)

    @property
    def logs_used(self) -> list[str]:
        return [lg.path for lg in self.logs if lg.entries_applied or lg.pages_applied]

    @property
    def stale(self) -> bool:
        """True when the hive is dirty and nothing could be replayed: what
        you read may miss the newest changes."""
        return self.dirty and not self.applied

    @property
    def image_size(self) -> int:
        """Size of the replayed hive file (base block + hive bins data)."""
        return BASE_BLOCK_SIZE + self.hbins_size_after

    def _what(self) -> str:
        used = [lg for lg in self.logs if lg.entries_applied or lg.pages_applied]
        if self.format == "new":
            per = ", ".join(f"{lg.name}: {lg.entries_applied}" for lg in used)
            n = self.entries_applied
            return f"{n} log entr{'y' if n == 1 else 'ies'} up to sequence {self.last_sequence} ({per})"
        return f"{self.pages_applied} dirty pages from {', '.join(lg.name for lg in used)} (old format)"

    def summary(self) -> str:
        """One line for humans (used by ``regfast info``)."""
        if not self.logs:
            found = "none found"
        else:
            found = ", ".join(
                lg.name + (f" ({lg.problem})" if lg.problem and lg.format in ("empty", "invalid") else "")
                for lg in self.logs
            )
        if self.applied:
            what = (
                f"{self.entries_applied} entr{'y' if self.entries_applied == 1 else 'ies'} applied "
                f"up to sequence {self.last_sequence}"
                if self.format == "new"
                else f"{self.pages_applied} dirty pages applied"
            )
            return f"{found}; replayed ({self.format} format): {what}; stopped: {self.stop_reason}"
        return f"{found}; not applied: {self.stop_reason}"

    def note(self) -> tuple[str, str] | None:
        """What a command line should tell about this open, in one line:
        ``("note" | "warning", text)``, or None when there is nothing to say
        (a clean hive read as stored)."""
        name = os.path.basename(self.path)
        state = f"dirty hive ({', '.join(self.dirty_reasons)})" if self.dirty else "clean hive"
        if self.applied:
            text = f"{name}: {state}: replayed {self._what()}"
            if self.newer_than_clean:
                text += " (entries newer than the primary file; Windows would not replay them)"
            if self.stop_reason.startswith("invalid log entry"):
                return "warning", f"{text}; stopped at an {self.stop_reason}"
            if self.warnings:
                return "warning", f"{text}; {'; '.join(self.warnings)}"
            return "note", text
        if self.dirty:
            return "warning", (
                f"{name}: {state} read as stored, logs not replayed: {self.stop_reason}; "
                "its newest changes may be missing"
            )
        return None


# --------------------------------------------------------------------------
# The report of each open
# --------------------------------------------------------------------------

_REPORTS: weakref.WeakKeyDictionary[Hive, RecoveryReport | _CleanOpen] = weakref.WeakKeyDictionary()


# Makes a pending report (_CleanOpen) once: threads asking together get the same object.
_REPORTS_LOCK = threading.Lock()


def recovery_of(hive: Any) -> RecoveryReport | None:
    """The RecoveryReport of a hive opened by ``open_hive(..., logs=...)`` or
    :func:`recover` (None for hives opened otherwise)."""
    try:
        report = _REPORTS.get(hive)
    except TypeError:
        return None
    if isinstance(report, _CleanOpen):
        with _REPORTS_LOCK:
            report = _REPORTS.get(hive)
            if isinstance(report, _CleanOpen):
                report = _report_from_facts(*report)
                _REPORTS[hive] = report
    return report


def _warn_stale(report: RecoveryReport, stacklevel: int) -> None:
    if report.stale:
        warnings.warn(
            f"{report.path}: the hive is dirty ({', '.join(report.dirty_reasons)}) and its "
            f"transaction logs were not replayed ({report.stop_reason}): its newest changes "
            "may be missing",
            DirtyHiveWarning,
            stacklevel=stacklevel,
        )
    elif report.applied and report.stop_reason.startswith("invalid log entry"):
        warnings.warn(
            f"{report.path}: log replay stopped at an invalid entry ({report.stop_reason})",
            DirtyHiveWarning,
            stacklevel=stacklevel,
        )
    elif report.applied and report.format == "old" and report.stop_reason != "all dirty pages applied":
        # an old-format log cut short at a bad hive bin: the pages before it
        # are in, the rest of the logged write is not (a hive mixing two
        # writes), as with a new-format log's invalid entry
        warnings.warn(
            f"{report.path}: log replay stopped before the end of the log ({report.stop_reason}; "
            f"{'; '.join(report.warnings)}): its newest changes may be missing",
            DirtyHiveWarning,
            stacklevel=stacklevel,
        )


def _report_from_info(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes], hive: Hive, stop_reason: str
) -> RecoveryReport:
    """A report for a hive opened from its file as it is (no replay)."""
    return _report_from_facts(os.fsdecode(os.fspath(path)), _facts_of(hive), stop_reason)


def _facts_of(hive: Hive) -> tuple[int, int, bool, int]:
    """Sequence numbers, checksum verdict and hbins size of the hive's base block."""
    # from the base block: info() checks every hbin of a strict open for its
    # counts, which would make every open as slow as a full check
    facts = hive._base_facts()
    if facts is None:  # no mapping (a remote hive): its info is all there is
        i = hive.info()
        facts = (*i.sequence, i.checksum_ok, i.hbins_size)
    return facts


def _report_from_facts(path: str, facts: tuple[int, int, bool, int], stop_reason: str) -> RecoveryReport:
    """The report of a hive read as stored, from Hive._base_facts()."""
    primary, secondary, checksum_ok, hbins_size = facts
    seq_differ = primary != secondary
    report = RecoveryReport(
        path,
        dirty=seq_differ or not checksum_ok,
        sequence=(primary, secondary),
        checksum_ok=checksum_ok,
        hbins_size_before=hbins_size,
        hbins_size_after=hbins_size,
        stop_reason=stop_reason,
    )
    if not checksum_ok:
        report.dirty_reasons.append("base block checksum mismatch")
    if seq_differ:
        report.dirty_reasons.append(f"sequence numbers differ ({primary} / {secondary})")
    return report


class _CleanOpen(NamedTuple):
    """The report of a clean hive opened as stored, not made yet: making it
    (and parsing the base block for it in Python, as before _base_facts) was
    ~4 us of a small hive's 17 us open, and few callers ask for it.
    recovery_of() makes it on first use."""

    path: str
    facts: tuple[int, int, bool, int]
    stop_reason: str


def _note_open(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes], hive: Hive, stop_reason: str, stacklevel: int
) -> None:
    """Files the report of a hive opened as stored, warning when it is dirty
    (a clean one's is made only when asked for: _CleanOpen). The report's
    path is a str whatever the caller passed (scan_many passes paths as given)."""
    path = os.fsdecode(os.fspath(path))
    facts = _facts_of(hive)
    if facts[0] == facts[1] and facts[2]:
        _REPORTS[hive] = _CleanOpen(path, facts, stop_reason)
        return
    report = _report_from_facts(path, facts, stop_reason)
    _REPORTS[hive] = report
    _warn_stale(report, stacklevel + 1)
