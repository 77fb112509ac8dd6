"""The names every live-registry module shares: the predefined root keys,
access masks and registry views (winreg's spellings and values), and how a
root or a view given as text or number becomes the number the agent takes."""

from __future__ import annotations

from regfast._types import upcase_name

__all__ = [
    "HKEY_CLASSES_ROOT",
    "HKEY_CURRENT_USER",
    "HKEY_LOCAL_MACHINE",
    "HKEY_USERS",
    "HKEY_CURRENT_CONFIG",
    "HKCR",
    "HKCU",
    "HKLM",
    "HKU",
    "HKCC",
    "ROOT_NAMES",
    "KEY_QUERY_VALUE",
    "KEY_SET_VALUE",
    "KEY_CREATE_SUB_KEY",
    "KEY_ENUMERATE_SUB_KEYS",
    "KEY_NOTIFY",
    "KEY_READ",
    "KEY_WRITE",
    "KEY_ALL_ACCESS",
]

HKEY_CLASSES_ROOT = HKCR = 0x80000000
HKEY_CURRENT_USER = HKCU = 0x80000001
HKEY_LOCAL_MACHINE = HKLM = 0x80000002
HKEY_USERS = HKU = 0x80000003
HKEY_CURRENT_CONFIG = HKCC = 0x80000005

KEY_QUERY_VALUE = 0x0001
KEY_SET_VALUE = 0x0002
KEY_CREATE_SUB_KEY = 0x0004
KEY_ENUMERATE_SUB_KEYS = 0x0008
KEY_NOTIFY = 0x0010
KEY_READ = 0x20019
KEY_WRITE = 0x20006
KEY_ALL_ACCESS = 0xF003F

ROOT_NAMES = {
    HKCR: "HKEY_CLASSES_ROOT",
    HKCU: "HKEY_CURRENT_USER",
    HKLM: "HKEY_LOCAL_MACHINE",
    HKU: "HKEY_USERS",
    HKCC: "HKEY_CURRENT_CONFIG",
}
_ROOT_ALIASES = {n: r for r, n in ROOT_NAMES.items()}
_ROOT_ALIASES.update({"HKCR": HKCR, "HKCU": HKCU, "HKLM": HKLM, "HKU": HKU, "HKCC": HKCC})


def _root(root: int | str) -> int:
    if isinstance(root, str):
        try:
            return _ROOT_ALIASES[upcase_name(root)]  # (as the registry folds: "HKEY_USERſ" is no root)
        except KeyError:
            raise ValueError(f"unknown root key {root!r} (HKLM, HKCU, HKU, HKCR, HKCC)") from None
    return int(root)


def _view(view: int | str | None) -> int:
    """0 / None / "native", 64 (KEY_WOW64_64KEY = 0x100), 32 (KEY_WOW64_32KEY = 0x200)."""
    if view in (None, 0, "native"):
        return 0
    if view in (64, "64", 0x100):
        return 0x100
    if view in (32, "32", 0x200):
        return 0x200
    raise ValueError(f"view must be 'native', 32 or 64, not {view!r}")


def _split_path(path: str) -> str:
    if not isinstance(path, str):
        raise TypeError(f"a key path must be a str, not {type(path).__name__}")
    return "\\".join(p for p in path.split("\\") if p) if "\\\\" in path else path.strip("\\")
