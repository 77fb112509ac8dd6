"""The live-registry commands: ``regfast agent-path``, ``regfast save-key``,
``regfast key-security`` (through regfast-agent, :func:`regfast.connect`)."""

from __future__ import annotations

import os
from typing import Any

from regfast.live.admin import save_key
from regfast.live.agent import cli_agent_path
from regfast.live.registry import connect

__all__ = ["add_cli_parser"]


def _split_key(spec: str) -> tuple[str, str]:
    root, _, path = spec.partition("\\")
    return root, path


def _cmd_save_key(args: Any) -> int:
    root, path = _split_key(args.key)
    with connect() as reg:
        if args.native:
            with reg.privileges("SeBackupPrivilege"), reg.open_key(root, path) as key:
                res = save_key(key, os.path.abspath(args.out), "native")
        else:
            with reg.open_key(root, path) as key:
                res = save_key(key, args.out)
    note = "" if res.format == "regf" else " (not a regf hive: Wine's RegSaveKeyExW writes its text format)"
    counts = f": {res.keys} keys, {res.values} values" if res.keys else ""
    print(f"{res.path}: {res.format}{counts}{note}")
    return 0


def _cmd_key_security(args: Any) -> int:
    root, path = _split_key(args.key)
    with connect() as reg:
        if args.sacl:
            with reg.privileges("SeSecurityPrivilege"), reg.open_key(root, path) as key:
                print(key.security())
        else:
            with reg.open_key(root, path) as key:
                print(key.security())
    return 0


def add_cli_parser(sub: Any) -> None:
    """Registers `agent-path`, `save-key` and `key-security` on the regfast CLI's subparsers."""
    s = sub.add_parser(
        "agent-path", help="print where regfast-agent.exe is (see python -m regfast.live.agent)"
    )
    s.set_defaults(func=cli_agent_path)
    s = sub.add_parser("save-key", help="save a live key's subtree to a hive file (through regfast-agent)")
    s.add_argument("key", help=r"ROOT\path of the live key, e.g. HKCU\Software\Vendor")
    s.add_argument("out", help="the hive file to write")
    s.add_argument(
        "--native",
        action="store_true",
        help="RegSaveKeyExW with SeBackupPrivilege instead of regfast's writer",
    )
    s.set_defaults(func=_cmd_save_key)
    s = sub.add_parser("key-security", help="print a live key's security descriptor as SDDL")
    s.add_argument("key", help=r"ROOT\path of the live key")
    s.add_argument("--sacl", action="store_true", help="enable SeSecurityPrivilege to include the SACL")
    s.set_defaults(func=_cmd_key_security)
