"""What a log replay did: :class:`RecoveryReport` and :class:`LogReport`.

Plain data, filled in by :mod:`regfast.hive.logs` and read by people (``regfast
info``, the one-line note every CLI command prints for a dirty hive) and by
programs (``regfast.recovery_of(hive)``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["DirtyHiveWarning", "LogReport", "RecoveryReport"]

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
