"""Every read the Python API offers, run over one (possibly damaged) hive.

Used by the field-aware mutator (fuzz/pyfuzz_regf.py) and by the tests of
hives that change under an open handle (tests/python/binding/test_changing_file.py).
The contract it checks is the project's: damage may raise an OSError (the
RegistryError family: RegistryCorruptError with the offset, winerror 6 once
closed...) or a ValueError (a DWORD of the wrong size, a FILETIME past 9999);
any other exception is a bug and propagates, and a crash or an ASan report
ends the process that runs it.
"""
from __future__ import annotations

import itertools
import json
from typing import Any, Callable

# What damage may raise. Anything else (TypeError, IndexError, SystemError,
# MemoryError, UnicodeEncodeError...) propagates: it is a finding.
EXPECTED = (OSError, ValueError)


def attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs), or None when it raises an expected error."""
    try:
        return fn(*args, **kwargs)
    except EXPECTED:
        return None


def _touch(view: Any) -> int:
    """Reads every byte of a memoryview (what a caller copying it would do)."""
    return len(bytes(view)) if view is not None else 0


def exercise_key(hive: Any, key: Any) -> int:
    """Everything one key offers; returns a count of things read."""
    n = 0
    for prop in ("name", "path", "class_name", "last_write", "parent"):
        n += attempt(getattr, key, prop) is not None
    attempt(key.info)
    attempt(repr, key)
    attempt(key.subkey_names)
    n += _touch(attempt(lambda: key.slack()))
    n += _touch(attempt(key.security_descriptor))
    attempt(key.security)
    values = attempt(key.values) or []
    names = []
    for v in itertools.islice(values, 64):
        names.append(v.name)
        attempt(repr, v)
        attempt(getattr, v, "value")
        n += _touch(attempt(getattr, v, "data"))
        attempt(v.raw)
        pair = attempt(v.slack)
        if pair:
            n += _touch(pair[0]) + _touch(pair[1])
        if attempt(key.value, v.name) is not None:
            n += 1
        attempt(key.get, v.name)
        attempt(key.__contains__, v.name)
    for errors in ("skip", "strict"):
        batch = attempt(key.read_values, errors=errors)
        if batch is not None:
            attempt(batch.values)
            attempt(batch.as_str)
            attempt(batch.as_int, default=0)
            attempt(batch.to_dict)
            attempt(repr, batch)
            for i in range(min(len(batch), 8)):
                n += _touch(attempt(batch.buffer, i))
    if names:
        batch = attempt(key.read_values, names + ["no such value"], errors="skip")
        if batch is not None:
            attempt(batch.values)
    return n


# columns a ScanTable makes from its stored ones on first use
_MADE_COLUMNS = ("key_depth", "key_n_values", "key_deleted", "value_deleted", "value_malformed",
                 "value_relisted", "key_name_off", "value_name_off")


def exercise_table(table: Any) -> int:
    """Every decoder of a ScanTable, the Arrow export's too (its column
    loops read names and data through the table's offsets)."""
    n = 0
    for fn in (table.key_names, table.value_names, table.key_paths, table.decoded_values, table.stats):
        r = attempt(fn)
        n += len(r) if isinstance(r, (list, dict)) else 0
    for i in range(min(table.n_values, 32)):
        n += _touch(attempt(table.value_data, i))
    for name in _MADE_COLUMNS:
        col = attempt(getattr, table, name)
        n += len(col) if col is not None else 0
    attempt(repr, table)
    try:
        import pyarrow  # noqa: F401  (optional: the arrow extra)
    except ImportError:
        return n
    from regfast.arrow import table_batches

    for decode in (True, False):
        pair = attempt(table.to_arrow, decode=decode)
        if pair is not None:
            n += pair[0].num_rows + pair[1].num_rows
    for batch in attempt(lambda: list(table_batches(table, source="fuzz", batch_rows=64))) or []:
        n += batch.num_rows
    return n


def exercise(hive: Any, *, max_keys: int = 300, heavy: bool = True) -> int:
    """Every read of the Python API over `hive` (up to `max_keys` keys walked
    one by one; the scans cover the whole hive). Returns a count of things read
    so a caller can tell that something was read at all."""
    from regfast.io.export import export_to_string

    n = 0
    attempt(hive.info)
    attempt(getattr, hive, "problems")
    attempt(repr, hive)
    for errors in ("skip", "strict"):
        keys = attempt(lambda: list(itertools.islice(hive.walk(errors=errors), max_keys))) or []
        n += len(keys)
    for key in keys:
        n += exercise_key(hive, key)
    for errors in ("skip", "strict"):
        for values in (True, False):
            table = attempt(hive.scan, errors=errors, values=values)
            if table is not None:
                n += exercise_table(table)
    table = attempt(hive.scan, errors="skip", include_deleted=True)
    if table is not None:
        n += exercise_table(table)
    deleted = attempt(hive.deleted) or []
    n += len(deleted)
    for rec in deleted[:16]:
        attempt(repr, rec)
    root = attempt(getattr, hive, "root")
    if root is not None:
        paths = [p + "\\" + v for p, v in itertools.islice(
            ((k.path, nm) for k in keys for nm in (attempt(lambda k=k: [v.name for v in k.values()]) or [])),
            64) if p is not None]
        if paths:
            attempt(hive.get_many, paths, default=None)
            attempt(hive.get_many, paths)
    size = attempt(lambda: hive.info().file_size) or 0
    for off in itertools.chain(range(4096, min(size, 4096 + 65536), 8 * 61), (size - 8, size, 2**40)):
        got = attempt(hive.cell, off)
        if got is not None:
            n += _touch(got[0])
    if heavy:
        for fmt in ("json", "reg", "csv"):
            text = attempt(export_to_string, hive, fmt)
            if fmt == "json" and text:
                json.loads(text)            # what was written must be valid JSON
    return n
