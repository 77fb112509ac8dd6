"""A small SOFTWARE-like sample hive, built on the fly with regfast's writer.

It ships as code rather than as a binary blob: ``regfast sample OUT`` writes it,
and the README's first command reads it back.
"""

from __future__ import annotations

import datetime as _dt
import os

from regfast.io.writer import REG_EXPAND_SZ, REG_QWORD, Key, Value, build_hive, write_hive

_WHEN = _dt.datetime(2026, 11, 25, 12, 0, tzinfo=_dt.timezone.utc)


def sample_tree() -> Key:
    """The sample's contents: a few realistic keys and every common value type."""
    current_version = {
        "ProductName": "Windows 10 Pro",
        "EditionID": "Professional",
        "CurrentBuild": "19045",
        "CurrentMajorVersionNumber": 10,
        "CurrentMinorVersionNumber": 0,
        "InstallDate": 1700000000,
        "InstallTime": Value(REG_QWORD, 133444736000000000),
        "SystemRoot": "C:\\WINDOWS",
        "PathName": Value(REG_EXPAND_SZ, "%SystemRoot%"),
        "DigitalProductId": bytes(range(256)) * 5,
        "Fonts": {"Arial (TrueType)": "arial.ttf", "Segoe UI (TrueType)": "segoeui.ttf"},
    }
    uninstall = {
        f"{{{i:08X}-0000-0000-0000-000000000000}}": {
            "DisplayName": f"Sample Application {i}",
            "DisplayVersion": f"1.{i}.0",
            "EstimatedSize": 1024 * i,
            "Publisher": "regfast sample",
        }
        for i in range(1, 21)
    }
    return Key(
        subkeys={
            "Microsoft": {
                "Windows NT": {"CurrentVersion": current_version},
                "Windows": {
                    "CurrentVersion": {
                        "Uninstall": uninstall,
                        "Run": {"OneDrive": '"C:\\Program Files\\OneDrive\\OneDrive.exe" /background'},
                        "ProgramFilesDir": "C:\\Program Files",
                    }
                },
            },
            "Classes": {".txt": {"": "txtfile", "Content Type": "text/plain"}},
            "Policies": {},
            "Wow6432Node": {
                "Microsoft": {"Windows": {"CurrentVersion": {"ProgramFilesDir": "C:\\Program Files (x86)"}}}
            },
            "Unicode ключ 日本": {"名前": "値", "Ünïcödé": ["a", "b", "ç"]},
        },
        last_write=_WHEN,
    )


def sample_bytes() -> bytes:
    """The sample hive's bytes (the same on every run: its times are fixed)."""
    return build_hive(sample_tree(), timestamp=_WHEN, file_name="SOFTWARE")[0]


def write_sample(path: str | os.PathLike[str]) -> None:
    """Writes the sample hive to `path`."""
    write_hive(path, sample_tree(), timestamp=_WHEN, file_name="SOFTWARE")


def is_sample(path: str | os.PathLike[str]) -> bool:
    """True when the file at `path` holds exactly the sample hive."""
    want = sample_bytes()
    try:
        if os.path.getsize(path) != len(want):
            return False
        with open(path, "rb") as f:
            return f.read() == want
    except OSError:
        return False
