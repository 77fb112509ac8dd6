"""Exporting a subtree as .reg, JSON or CSV, streamed from one scan().

.reg output follows what ``reg import`` / regedit accept: UTF-16LE with a
BOM, CRLF line ends, ``"name"="text"`` only for clean strings (one NUL at
the end, no other NUL, no line breaks), ``dword:`` for 4-byte DWORDs and
``hex(n):`` for everything else, so every byte round-trips. A key or value
name holding a line break, or a key name holding a backslash, cannot be
written there (a line break would start lines of its own, a
backslash another level: keys and values the hive does not hold, on
import): a .reg export of such a name raises ValueError naming it.

A key path starting with "-" would read as a deletion, and a .reg file
holds one value of a name (a damaged key can hold two, "V" beside "v"):
the first raises ValueError, the second too, unless errors="skip", which
writes the first (the one a lookup finds) and lists the others in
``skipped``.

JSON holds a key's values in an object by name; a damaged key can name one
value twice, and the later ones go to ``duplicate_values`` (a list of
``{"name", "type", "data"}``, in stored order), present only then. A value
list entry naming a vk its list named before is that same value: written
once (and not counted twice); so it is in CSV and .reg (each list entry
would repeat its data: a 1 MB file could list one 1 MB vk 200,000 times).

Names and strings are UTF-16 in a hive and Windows does not check them, so
a name may hold a lone surrogate (half of a UTF-16 pair; Python keeps it as
a code point U+D800..U+DFFF). Each format writes one the way it can:

* .reg (UTF-16LE): the raw code unit, as Windows' ``reg export`` writes it
  (``reg import`` reads it back): exact.
* JSON: the escape ``\\udXXX``, which JSON defines for exactly this; a JSON
  reader gives back the same string: exact.
* CSV (UTF-8, which cannot hold a lone surrogate): the six characters
  ``\\udXXX`` (Python's "backslashreplace"); readable, but not told apart
  from a name that really holds those six characters.

A file export (:func:`export_to_file`) appears whole or not at all: it is
written to a temporary file beside the target and renamed over it at the
end (``regfast._files.atomic_output``).

Key last-write times are ISO 8601 in UTC (``2016-10-05T09:03:15.348308+00:00``)
in JSON (``last_write``, with the FILETIME as stored in ``last_write_filetime``)
and CSV (``last_write``); a FILETIME past year 9999, which no timestamp holds,
is null / empty there (JSON keeps it in ``last_write_filetime``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable
from typing import IO, Any, NamedTuple, cast

import numpy as np

from regfast._files import atomic_output
from regfast._native import Hive, decode_value
from regfast._types import REG_BINARY, REG_DWORD, REG_SZ, filetime_to_datetime, type_name, upcase_name
from regfast.exceptions import RF_E_CORRUPT, RF_E_LIMIT, RegistryError

__all__ = [
    "export",
    "export_to_file",
    "export_to_string",
    "reg_value_line",
    "ExportResult",
    "Skipped",
    "skip_reason",
    "SECOND_OF_NAME",
]

_REG_HEADER = "Windows Registry Editor Version 5.00\r\n"
_LINE = 80  # regedit wraps hex data at 80 columns with "\" continuations


def _reg_string(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


#: Skipped.status of a value a .reg export leaves out because the key holds
#: an earlier value of its name (ERROR_ALREADY_EXISTS): not damage it read
SECOND_OF_NAME = 183

#: characters a .reg name cannot hold: a CR or LF would end the line (the
#: rest of the name would be read as new lines: other keys, other values),
#: and a key name's "\\" would be read as two levels (Windows' own hive
#: check, CmpCheckKey, lets such a name be: only an edit of the file makes
#: one). A NUL is written as it is (hivex's "special" test hive, written by
#: Windows, has a key "zero\\0key"): it starts no line.
_REG_UNSAFE_NAME = re.compile("[\r\n]")
_REG_UNSAFE_KEY_NAME = re.compile("[\r\n\\\\]")


def _reg_root_check(hive: Hive, path: str | None, prefix: str) -> None:
    """Raises ValueError when what goes before every exported key path --
    the prefix and the exported key's ancestors -- cannot be written in a
    .reg file (the names of the keys exported are checked as they go)."""
    if _REG_UNSAFE_NAME.search(prefix):
        raise ValueError(f"prefix {prefix!r} holds a line break, which a .reg file cannot carry")
    key = hive.open(path) if path else None
    while key is not None and key.parent is not None:
        key = key.parent
        if key.parent is not None:  # (the root's name is in no path)
            _reg_name_check(key.name, "key", hive, key.offset)


def _reg_name_check(name: str, what: str, hive: Hive, token: int) -> None:
    """Raises ValueError when `name` (a key's own name, or a value's) cannot
    be written in a .reg file. The record's file offset, for the message, is
    asked of the hive only then (a call per value would cost a big export
    more than the check)."""
    key = what == "key"
    if (_REG_UNSAFE_KEY_NAME if key else _REG_UNSAFE_NAME).search(name):
        chars = "a line break or a backslash" if key else "a line break"
        at = hive.token_offset(token)
        raise ValueError(
            f"{what} {name!r} (cell at 0x{at:x}) holds {chars}, which a .reg file cannot carry "
            "(a line break would start new lines: other keys and values on import; a backslash, "
            "another level of keys); export it as JSON or CSV"
        )


def _clean_string(raw: bytes) -> str | None:
    """The text of a REG_SZ that the quoted form can carry exactly, else None.
    A lone surrogate is carried (the .reg file holds the code unit itself)."""
    if len(raw) < 2 or len(raw) % 2 or raw[-2:] != b"\0\0":
        return None
    text = raw[:-2].decode("utf-16-le", "surrogatepass")
    if "\0" in text or "\r" in text or "\n" in text:
        return None
    return text


def _reg_hex(prefix: str, raw: bytes) -> str:
    """`prefix` + comma-separated hex bytes, wrapped the way regedit wraps."""
    out, line = [], prefix
    for i, b in enumerate(raw):
        piece = f"{b:02x}" + ("," if i < len(raw) - 1 else "")
        if len(line) + len(piece) > _LINE - 1 and line.strip():
            out.append(line + "\\")
            line = "  "
        line += piece
    out.append(line)
    return "\r\n".join(out)


def reg_value_line(name: str, vtype: int, raw: bytes) -> str:
    """One value of a .reg file (without the trailing CRLF)."""
    lhs = "@" if name == "" else f'"{_reg_string(name)}"'
    if vtype == REG_SZ:
        text = _clean_string(raw)
        if text is not None:
            return f'{lhs}="{_reg_string(text)}"'
    if vtype == REG_DWORD and len(raw) == 4:
        return f"{lhs}=dword:{int.from_bytes(raw, 'little'):08x}"
    kind = "hex" if vtype == REG_BINARY else f"hex({vtype:x})"
    return _reg_hex(f"{lhs}={kind}:", raw)


def iso_time(filetime: int) -> str | None:
    """A FILETIME as ISO 8601 (UTC); None when it is past the year 9999."""
    try:
        when = filetime_to_datetime(filetime)
    except ValueError:  # (older _types raise; newer ones give None)
        return None
    return when.isoformat() if when is not None else None


def _json_data(vtype: int, value: object, raw: bytes) -> object:
    if isinstance(value, bytes):
        return {"hex": raw.hex()}
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def escape_surrogates(text: str) -> str:
    """`text` with every lone surrogate written as the six characters
    ``\\udXXX``: in JSON text (where it can only sit inside a string) that is
    the escape JSON defines for it; elsewhere it is Python's "backslashreplace".
    The result encodes to UTF-8."""
    return text if text.isascii() else _SURROGATE.sub(_escape_surrogate, text)


class _CsvRows:
    """csv.writer with "\n" line ends that also quotes a field holding a lone
    CR: Python's writer quotes only the characters of its lineterminator
    (3.11), so with "\n" a name or string holding "\r" went out unquoted and
    a CSV reader split its row there. Each row is made with "\r\n" (which
    quotes both) and written with "\n"."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._buf = io.StringIO()
        self._w = csv.writer(self._buf, lineterminator="\r\n")

    def writerow(self, row: list[str]) -> None:
        self._buf.seek(0)
        self._buf.truncate()
        self._w.writerow(row)
        self._out.write(self._buf.getvalue()[:-2] + "\n")


class Skipped(NamedTuple):
    """Something ``export(errors="skip")`` could not read and left out.

    kind "key": the key was written, but some of its subkeys (with their
    subtrees) or values are missing; ``offset`` is the file offset of its nk
    cell. kind "value": one value of the key at ``path`` is missing;
    ``offset`` is its vk cell and ``name`` its name when that was readable.
    ``path`` is the key's path in the hive (no export prefix), ``depth`` its
    depth below the exported key (the scan's ``key_depth``), ``status`` regfast's status code
    (RF_E_CORRUPT ...); :func:`skip_reason` words it.
    """

    kind: str
    offset: int
    path: str
    name: str | None
    status: int
    depth: int


class ExportResult(tuple):  # type: ignore[type-arg]
    """``(keys, values)`` written — a plain pair for callers that unpack it —
    plus :attr:`skipped`: what a skip export left out (empty in strict mode,
    which raises instead). Nothing is dropped without a record here."""

    skipped: list[Skipped]

    def __new__(cls, keys: int, values: int, skipped: list[Skipped]) -> ExportResult:
        self = super().__new__(cls, (keys, values))
        self.skipped = skipped
        return self

    @property
    def keys(self) -> int:
        return int(self[0])

    @property
    def values(self) -> int:
        return int(self[1])

    @property
    def skipped_keys(self) -> int:
        """Keys written with part of their subtree or values missing."""
        return sum(1 for s in self.skipped if s.kind == "key")

    @property
    def skipped_values(self) -> int:
        """Values left out."""
        return sum(1 for s in self.skipped if s.kind == "value")


_MAX_DEPTH = 512  # Windows' key depth limit (the scan's max_depth)


def _skipped(t: Any) -> list[Skipped]:
    """Every row a skip scan marked, as Skipped records in file order."""
    kbad = np.flatnonzero(t.key_status != 0).tolist()
    # a malformed value (status 13, a size that does not fit its type) is
    # exported with its data: not a skip; a damaged vk its list names again
    # is one skip (ScanTable.value_relisted)
    vbad = np.flatnonzero((t.value_status != 0) & ~t.value_malformed & ~t.value_relisted).tolist()
    if not kbad and not vbad:
        return []
    paths = t.key_paths()
    depth = t.key_depth.tolist()
    at = t.hive.token_offset  # a token's cell in the file, from the backend (rf_hive_token_offset)
    out = [
        Skipped("key", at(int(t.key_token[k])), paths[k] or "", None, int(t.key_status[k]), depth[k])
        for k in kbad
    ]
    if vbad:
        names = t.value_names()
        for i in vbad:
            k = int(t.value_key[i])
            out.append(
                Skipped(
                    "value",
                    at(int(t.value_token[i])),
                    paths[k] or "",
                    names[i] or None,
                    int(t.value_status[i]),
                    depth[k],
                )
            )
    out.sort(key=lambda s: s.offset)
    return out


def skip_reason(hive: Hive, s: Skipped) -> str:
    """Words for what was skipped: the error a strict read of that spot
    raises (it names the offset and what is wrong there), else the status.
    Reads the hive again: meant for the few rows a report shows."""
    if s.status == SECOND_OF_NAME:
        return (
            f"vk at 0x{s.offset:x}: a second value of its name in the key; a .reg file holds one "
            "value of a name, and the first is written (the one a lookup finds)"
        )
    if s.kind == "key" and (s.path.count("\\") + 1 if s.path else 0) >= _MAX_DEPTH:
        return f"nk at 0x{s.offset:x}: subkeys deeper than {_MAX_DEPTH} levels (Windows' limit)"
    try:
        key = hive.open(s.path) if s.path else hive.root
        if s.kind == "key":
            list(key.subkeys())
        for v in key.values():
            if s.kind == "value" and hive.token_offset(v.offset) == s.offset:
                v.raw()
    except RegistryError as e:
        if s.kind == "key" or e.offset == s.offset:
            return str(e.strerror)
    except (ValueError, OverflowError):  # a path this binding cannot look up: the status says enough
        pass
    what = {RF_E_CORRUPT: "damaged", RF_E_LIMIT: "over a size limit"}.get(s.status, f"status 0x{s.status:x}")
    return f"{'nk' if s.kind == 'key' else 'vk'} at 0x{s.offset:x}: {what}"


def export(
    hive: Hive,
    out: IO[str],
    fmt: str,
    path: str | None = None,
    *,
    prefix: str = "",
    progress: Callable[[int, int], object] | None = None,
    errors: str = "strict",
) -> ExportResult:
    """Writes the subtree at `path` to `out` in `fmt` ("reg", "json" or "csv").

    `prefix` is put before key paths (for .reg, the root the file should be
    imported under, e.g. ``HKEY_LOCAL_MACHINE\\SOFTWARE``). Returns the
    numbers of keys and values written (an :class:`ExportResult`, a pair).
    errors="skip" (damaged hives) goes on past what the scan cannot read —
    a damaged subkey list, value list or value — and lists each such spot in
    the result's ``skipped``, so nothing is dropped silently.

    Lone UTF-16 surrogates in names and strings: see the module docstring
    (.reg needs a stream that encodes them, e.g. UTF-16LE with
    errors="surrogatepass"; JSON and CSV text holds none).
    """
    if fmt not in ("reg", "json", "csv"):
        raise ValueError(f"unknown export format {fmt!r} (reg, json, csv)")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    if fmt == "reg":
        _reg_root_check(hive, path, prefix)
    table = hive.scan(path, values=True, progress=None, errors=errors)
    # rows without data; a malformed value (status 13, size not fitting its
    # type) has its data and is exported: decoded in json/csv, bytes in .reg
    unread = (table.value_status != 0) & ~table.value_malformed
    # A list entry naming a vk its key's list named before is that same value,
    # not another of its name: each format writes it once (each entry would
    # repeat its data: a 1 MB file could list one 1 MB vk 200,000 times).
    relisted_rows = table.value_relisted
    relisted = int((relisted_rows & ~unread).sum())
    bad = (unread | relisted_rows).tolist()  # rows not written
    malformed = table.value_malformed.tolist()
    paths = cast("list[str]", table.key_paths())  # live rows only: never None
    names = table.value_names()
    # every row decoded in one call, but for a table with relisted rows: then
    # each written row alone (decoding all would make a str per list entry
    # again, the very copies writing each vk once avoids)
    some_relisted = bool(relisted_rows.any())
    decoded: list[Any] = table.decoded_values() if fmt != "reg" and not some_relisted else []

    key_names: list[str] = table.key_names() if fmt == "reg" else []
    vkey = table.value_key.tolist()
    vtokens: list[int] = table.value_token.tolist() if fmt == "reg" else []
    ktokens: list[int] = table.key_token.tolist() if fmt == "reg" else []
    vtype = table.value_type.tolist()

    def decoded_at(i: int) -> Any:
        return decode_value(vtype[i], table.value_data(i)) if some_relisted else decoded[i]

    twice: list[Skipped] = []  # .reg, errors="skip": later values of a name already written
    last_write = table.key_last_write.tolist()
    first_value = [0] * (table.n_keys + 1)
    for k in vkey:
        first_value[k + 1] += 1
    for i in range(table.n_keys):
        first_value[i + 1] += first_value[i]

    def full(p: str) -> str:
        return "\\".join(x for x in (prefix.rstrip("\\"), p) if x)

    if fmt == "csv":
        w = _CsvRows(out)
        # last_write last: an added column must not move the others
        w.writerow(["key", "value", "type", "data", "last_write"])
    elif fmt == "json":
        out.write("[\n")
    else:
        out.write(_REG_HEADER)

    n = table.n_keys
    for k in range(n):
        lo, hi = first_value[k], first_value[k + 1]
        if fmt == "reg":
            if paths[k]:  # (the hive's root, whose name no path holds, has path "")
                _reg_name_check(key_names[k], "key", hive, ktokens[k])
            line = full(paths[k])
            if line.startswith("-"):
                raise ValueError(
                    f"key path {line!r} starts with '-', which a .reg file reads as the deletion of "
                    "a key; export it with a prefix, or as JSON or CSV"
                )
            out.write(f"\r\n[{line}]\r\n")
            written: set[str] = set()  # folded names: a .reg file holds one value of a name
            for i in range(lo, hi):
                if bad[i]:
                    continue
                _reg_name_check(names[i], "value", hive, vtokens[i])
                folded = upcase_name(names[i]) if hi - lo > 1 else ""  # as the registry compares names
                if folded in written:
                    offset = hive.token_offset(vtokens[i])
                    # reg import would keep the last; a lookup in the hive finds the first
                    if errors != "skip":
                        raise ValueError(
                            f"key {line!r} holds a second value named {names[i]!r} (vk at 0x{offset:x}; "
                            "a damaged key): a .reg file can hold one value of a name; the tolerant export "
                            '(errors="skip"; regfast export --tolerant) writes the first and lists the '
                            "others; or export as JSON or CSV"
                        )
                    depth = int(table.key_depth[k])
                    twice.append(Skipped("value", offset, paths[k], names[i], SECOND_OF_NAME, depth))
                    continue
                written.add(folded)
                out.write(reg_value_line(names[i], vtype[i], bytes(table.value_data(i))) + "\r\n")
        elif fmt == "json":
            vals: dict[str, Any] = {}
            again: list[Any] = []  # a damaged key can name one value twice: none is dropped
            for i in range(lo, hi):
                if bad[i]:
                    continue
                raw = bytes(table.value_data(i))
                entry = {"type": type_name(vtype[i]), "data": _json_data(vtype[i], decoded_at(i), raw)}
                if malformed[i]:
                    entry.update(well_formed=False, hex=raw.hex())
                if names[i] in vals:
                    again.append({"name": names[i], **entry})
                else:
                    vals[names[i]] = entry
            rec = {
                "path": full(paths[k]),
                "last_write": iso_time(last_write[k]),
                "last_write_filetime": last_write[k],
                "values": vals,
            }
            if again:
                # the later values of a name already in "values", in stored order
                rec["duplicate_values"] = again
            out.write(("  " if k == 0 else ",\n  ") + escape_surrogates(json.dumps(rec, ensure_ascii=False)))
        else:
            kp = escape_surrogates(full(paths[k]))
            when = iso_time(last_write[k]) or ""
            if all(bad[lo:hi]):  # no value row written (none, or all skipped): the key's own row
                w.writerow([kp, "", "", "", when])
            for i in range(lo, hi):
                if bad[i]:
                    continue
                val = decoded_at(i)
                text = (
                    val.hex()
                    if isinstance(val, bytes)
                    else ("\n".join(val) if isinstance(val, list) else str(val))
                )
                w.writerow(
                    [kp, escape_surrogates(names[i]), type_name(vtype[i]), escape_surrogates(text), when]
                )
        if progress and (k & 1023) == 0:
            progress(k, n)
    if fmt == "json":
        out.write("\n]\n")
    if progress:
        progress(n, n)
    skipped = _skipped(table) if errors == "skip" else []
    if twice:
        skipped = sorted(skipped + twice, key=lambda s: s.offset)
    return ExportResult(table.n_keys, table.n_values - int(unread.sum()) - relisted - len(twice), skipped)


def export_to_file(
    hive: Hive,
    filename: str | os.PathLike[str],
    fmt: str,
    path: str | None = None,
    *,
    prefix: str = "",
    progress: Callable[[int, int], object] | None = None,
    errors: str = "strict",
) -> ExportResult:
    """export() into a file with the encoding its format needs (.reg: UTF-16LE
    + BOM; JSON, CSV: UTF-8), all or nothing: the file appears only once the
    export is complete, and a failure (a damaged hive in strict mode, a full
    disk, Ctrl-C) leaves no file, or the previous file of that name as it was."""
    if fmt not in ("reg", "json", "csv"):
        raise ValueError(f"unknown export format {fmt!r} (reg, json, csv)")
    if fmt == "reg":
        # surrogatepass: a lone surrogate is written as its UTF-16 code unit, as reg export does
        with atomic_output(filename, "w", encoding="utf-16-le", errors="surrogatepass", newline="") as f:
            f.write("\ufeff")  # the BOM reg import expects; explicit so it is LE on any host
            return export(hive, f, fmt, path, prefix=prefix, progress=progress, errors=errors)
    with atomic_output(filename, "w", encoding="utf-8", newline="") as f:
        return export(hive, f, fmt, path, prefix=prefix, progress=progress, errors=errors)


def export_to_string(hive: Hive, fmt: str, path: str | None = None, *, prefix: str = "") -> str:
    buf = io.StringIO(newline="")
    export(hive, buf, fmt, path, prefix=prefix)
    return buf.getvalue()
