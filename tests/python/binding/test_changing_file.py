"""A hive that changes or shrinks while it is open (issue 15, item 5).

The open-time walk validates every cell header once; after that the bytes may
change under the mapping (another process writing the file in place) or
vanish (the file truncated: reading a page past the new end raises SIGBUS).
The promise: wrong answers or a clean exception, never a read outside the
mapping (or the caller's buffer) and never a crash.

Every case runs in a child interpreter (tests/python/isolated.py), so a crash
fails the case instead of killing pytest; under tools/asan_pytest.sh the
children run the instrumented build too, and the from_buffer() variant (a
bytearray changed in place) is the one ASan can check to the byte.
"""
from __future__ import annotations

import errno
import random
import struct
import sys

import pytest

from isolated import run_isolated
from regfast.io.writer import Key, Value, build_hive

HUGE_ALLOC = -0x7FFFFFF8      # an allocated cell "2 GiB" long
HUGE_FREE = 0x7FFFFFF8


def sample_tree() -> Key:
    """Keys and values of every kind, over several hbins: lh lists and an ri
    root, classes, security, inline/cell/big data, deep nesting."""
    deep: dict = {"leaf": {"v": "bottom"}}
    for i in range(12):
        deep = {f"D{i}": deep}
    return Key(subkeys={
        "Software": Key(subkeys={f"K{i:03d}": Key(values={
            "s": "x" * i, "d": i, "b": bytes(range(i % 256)) * 3, "m": ["a", "b" * i], "": "default"},
            class_name=f"class{i}") for i in range(60)}),
        "Big": Key(values={"blob": b"\xAB" * 40000, "blob2": bytes(range(256)) * 80}),
        "Wide": Key(subkeys={f"w{i}": Key() for i in range(600)}),
        "Deep": deep,
        "Gone": Key(subkeys={"Child": Key(values={"secret": "deleted text", "n": 7})}),
    })


def build(tmp_path) -> tuple:
    """The sample hive on disk with "Gone\\Child" deleted (its cells freed,
    as Windows does), so deleted() has records to find."""
    data, layout = build_hive(sample_tree(), leaf_max=256)
    data = bytearray(data)

    def free(off):
        size, = struct.unpack_from("<i", data, off)
        struct.pack_into("<i", data, off, abs(size))

    struct.pack_into("<I", data, layout.nk["Gone"] + 4 + 0x14, 0)
    free(layout.subkey_list["Gone"])
    free(layout.nk["Gone\\Child"])
    free(layout.value_list["Gone\\Child"])
    for name in ("secret", "n"):
        free(layout.vk[("Gone\\Child", name)])
        if ("Gone\\Child", name) in layout.data:
            free(layout.data[("Gone\\Child", name)])
    path = tmp_path / "sample.hiv"
    path.write_bytes(data)
    return path, layout


# --- modifications: (file offset, bytes) pairs computed from the layout ------

def _cells(layout, kind):
    if kind == "nk":
        return list(layout.nk.values())
    if kind == "vk":
        return list(layout.vk.values())
    if kind == "lists":
        return list(layout.subkey_list.values()) + list(layout.value_list.values())
    if kind == "data":
        return list(layout.data.values())
    if kind == "sk":
        return list(layout.sk)
    raise KeyError(kind)


def edits(layout, case: str, size: int) -> list[tuple[int, bytes]]:
    """The in-place changes of one case."""
    out: list[tuple[int, bytes]] = []
    put = lambda off, fmt, v: out.append((off, struct.pack(fmt, v)))  # noqa: E731
    kind, _, what = case.partition(":")
    if what == "huge" and kind in ("nk", "vk", "lists", "data", "sk"):   # cell sizes "2 GiB" (allocated)
        for c in _cells(layout, kind):
            put(c, "<i", HUGE_ALLOC)
    elif what == "tiny" and kind in ("nk", "vk", "lists", "data", "sk"):                       # cell sizes that no walk would accept
        for i, c in enumerate(_cells(layout, kind)):
            put(c, "<i", (-1, -3, 0, 1, -4, 4)[i % 6])
    elif case == "free:huge":                  # free cells, then the deleted ones, 2 GiB long
        for off, _ in layout.free:
            put(off, "<i", HUGE_FREE)
        put(layout.nk["Gone\\Child"], "<i", HUGE_FREE)
        for name in ("secret", "n"):
            put(layout.vk[("Gone\\Child", name)], "<i", HUGE_FREE)
    elif case == "deleted:huge":               # a deleted record's free cell and name, both enlarged
        for off in [layout.nk["Gone\\Child"]] + [layout.vk[("Gone\\Child", n)] for n in ("secret", "n")]:
            put(off, "<i", HUGE_FREE)
        put(layout.nk["Gone\\Child"] + 4 + 0x48, "<H", 0xFFFF)
        for name in ("secret", "n"):
            put(layout.vk[("Gone\\Child", name)] + 4 + 0x02, "<H", 0xFFFF)
    elif case == "names:huge":
        for c in layout.nk.values():
            put(c + 4 + 0x48, "<H", 0xFFFF)
        for c in layout.vk.values():
            put(c + 4 + 0x02, "<H", 0xFFFF)
        put(layout.nk["Gone\\Child"] + 4 + 0x48, "<H", 0xFFFF)
    elif case == "counts:huge":                # list counts enlarged
        for c in layout.subkey_list.values():
            put(c + 4 + 0x02, "<H", 0xFFFF)
        for c in layout.nk.values():
            put(c + 4 + 0x14, "<I", 0xFFFFFF)
            put(c + 4 + 0x24, "<I", 0xFFFFFF)
    elif case == "data:lengths":               # data lengths, db counts, sk and class sizes
        for c in layout.vk.values():
            put(c + 4 + 0x04, "<I", 0x7FFFFFFF)
        for c in layout.sk:
            put(c + 4 + 0x10, "<I", 0xFFFFFFF0)
        for c in layout.nk.values():
            put(c + 4 + 0x4A, "<H", 0xFFFF)
    elif case.startswith("random:"):           # random bytes over random ranges
        rng = random.Random(int(case[7:]))
        for _ in range(40):
            off = rng.randrange(4096, size - 8)
            out.append((off, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 24)))))
    else:
        raise KeyError(case)
    return out


CASES = ["nk:huge", "vk:huge", "lists:huge", "data:huge", "sk:huge", "nk:tiny", "vk:tiny", "lists:tiny",
         "free:huge", "deleted:huge", "names:huge", "counts:huge", "data:lengths",
         *[f"random:{seed}" for seed in range(6)]]

CHILD_MODIFY = r"""
import sys, json
import regfast
from exercise import exercise

path, how, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if how == "file":
    hive = regfast.open_hive(path, logs=None)
    buf = None
else:
    from pyfuzz_regf import exact_buffer      # exactly sized: ASan sees one byte past the end
    buf = exact_buffer(open(path, "rb").read())
    hive = regfast.Hive.from_buffer(buf)
table = hive.scan(include_deleted=True)          # made before the change, decoded after
before = exercise(hive, max_keys=120, heavy=False)
assert before > 1000, before
if how == "file":
    with open(path, "r+b") as f:
        for off, hexdata in spec:
            f.seek(off)
            f.write(bytes.fromhex(hexdata))
else:
    for off, hexdata in spec:
        b = bytes.fromhex(hexdata)
        buf[off:off + len(b)] = b
from exercise import exercise_table
exercise_table(table)
print("after", exercise(hive, max_keys=120))
hive.close()
print("ok")
"""


@pytest.mark.parametrize("how", ["file", "buffer"])
@pytest.mark.parametrize("case", CASES)
def test_hive_changed_in_place_after_open(tmp_path, case, how):
    """Fields rewritten after the open-time walk: every read of the API stays
    inside its cell and the mapping (or raises), whatever the new bytes say."""
    import json
    path, layout = build(tmp_path)
    spec = [(off, b.hex()) for off, b in edits(layout, case, path.stat().st_size)]
    r = run_isolated(CHILD_MODIFY, str(path), how, json.dumps(spec))
    assert r.stdout.strip().endswith("ok")


def test_huge_vk_after_open_gives_names_from_inside_the_cell(tmp_path):
    """The reported case: a vk whose size and name length grow after the open.
    Its name is read from its cell as it was validated (bounded by the mapping),
    or the read fails: a 25,000-char name from past the file is impossible."""
    data, layout = build_hive({"A": {"v": "x", "w": 1}})
    path = tmp_path / "small.hiv"
    path.write_bytes(data)
    r = run_isolated(r"""
        import sys, struct
        import regfast
        path, vk = sys.argv[1], int(sys.argv[2])
        hive = regfast.open_hive(path, logs=None)
        size = hive.info().file_size
        with open(path, "r+b") as f:
            f.seek(vk); f.write(struct.pack("<i", -0x7FFFFFF8))
            f.seek(vk + 4 + 2); f.write(struct.pack("<H", 0xFFFF))
        t = hive.scan(errors="skip")
        names = t.value_names()
        # a name can be at most what lies between its vk and the end of the file
        assert max(len(n) for n in names) <= size - vk, max(len(n) for n in names)
        print("ok", max(len(n) for n in names))
    """, str(path), str(layout.vk[("A", "v")]))
    assert "ok" in r.stdout


# --- truncation while mapped ----------------------------------------------------

CHILD_TRUNCATE = r"""
import errno, os, subprocess, sys
import regfast
from exercise import exercise, exercise_table

path, who, copy = sys.argv[1], sys.argv[2], sys.argv[3] == "copy"
hive = regfast.open_hive(path, logs=None, copy=copy)
key = hive.open(r"Software\K030")
values = list(key.values())
table = hive.scan(include_deleted=True)
before = (table.key_paths(), table.decoded_values(), [v.value for v in values])
if who == "self":
    os.truncate(path, 8192)
else:
    subprocess.run([sys.executable, "-c", f"import os; os.truncate({path!r}, 8192)"], check=True)

def clean_error(fn, *args):
    try:
        fn(*args)
    except regfast.RegistryError as e:
        assert e.errno == errno.EIO and "truncated" in str(e), repr(e)
        assert e.winerror == 1117, repr(e)      # ERROR_IO_DEVICE, as scan_many's rows say
        return e
    raise AssertionError(f"{fn} did not fail")

if copy:
    # a private copy does not see the file change at all
    assert (table.key_paths(), table.decoded_values(), [v.value for v in values]) == before
    t2 = hive.scan(include_deleted=True)
    assert (t2.key_paths(), t2.decoded_values()) == before[:2]
    assert key.read_values().values() == before[2]
    print("ok copy")
    sys.exit(0)
clean_error(hive.validate)     # (every hbin was checked before the cut)
clean_error(hive.scan)
clean_error(lambda: list(hive.walk()))
clean_error(key.read_values)
clean_error(hive.deleted)
clean_error(key.values)
clean_error(lambda: values[0].value)
clean_error(table.key_names)
clean_error(table.key_paths)
clean_error(table.value_names)
clean_error(table.decoded_values)
clean_error(hive.get_many, [r"Software\K030\s"])
# views into the mapping are refused once the file no longer covers it (a view of
# the root cell, which survives the cut, would otherwise fault when read)
clean_error(hive.cell, 4096 + 0x20)
clean_error(lambda: values[0].data)
clean_error(hive.root.security_descriptor)
exercise_table(table)
exercise(hive)
hive.close()
print("ok")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="Windows refuses to truncate a mapped file")
@pytest.mark.parametrize("who", ["self", "other"])
def test_truncated_while_mapped_raises_instead_of_sigbus(tmp_path, who):
    """The file cut to 8 KiB under the mapping, by this process or another:
    validate, scan, walk, read_values, deleted, value and table decoding
    raise a RegistryError (errno EIO, winerror 1117, "truncated") instead of
    dying of SIGBUS, or, for validate, of saying all is well."""
    path, _ = build(tmp_path)
    r = run_isolated(CHILD_TRUNCATE, str(path), who, "map")
    assert r.stdout.strip().endswith("ok")


@pytest.mark.skipif(sys.platform == "win32", reason="Windows refuses to truncate a mapped file")
def test_private_copy_does_not_see_truncation(tmp_path):
    """open_hive(copy=True) reads the file into memory: a truncation after the
    open changes nothing the hive shows."""
    path, _ = build(tmp_path)
    r = run_isolated(CHILD_TRUNCATE, str(path), "self", "copy")
    assert r.stdout.strip().endswith("ok copy")



def test_deleted_record_enlarged_after_open_stays_in_the_buffer(tmp_path):
    """Harden's reproducer for the forensic reads: a deleted vk's free cell
    grows to 0x7FFFFFF8 bytes after the open, its name length to 0xFFFF, and
    every byte from its name to the end of an exactly sized buffer (numpy:
    ASan sees one byte past it) is printable. deleted(), slack() and cell()
    stay inside the buffer; cell() on the enlarged cell says its size no
    longer fits (RegistryCorruptError at its offset), not "no cell here"."""
    path, layout = build(tmp_path)
    vk = layout.vk[("Gone\\Child", "secret")]
    r = run_isolated(r"""
        import sys, struct
        import regfast
        from pyfuzz_regf import exact_buffer
        path, vk = sys.argv[1], int(sys.argv[2])
        buf = exact_buffer(open(path, "rb").read())
        hive = regfast.Hive.from_buffer(buf)
        assert any(d.offset == vk for d in hive.deleted())
        struct.pack_into("<i", buf, vk, 0x7FFFFFF8)
        struct.pack_into("<H", buf, vk + 4 + 2, 0xFFFF)
        name = vk + 4 + 0x14
        buf[name:] = b"A" * (len(buf) - name)
        for d in hive.deleted():
            assert d.offset + len(d.name) <= len(buf), (d.offset, len(d.name))
        hive.slack()
        try:
            hive.cell(vk)
        except regfast.RegistryCorruptError as e:
            assert e.offset == vk and "no longer fits" in str(e), repr(e)
        else:
            raise AssertionError("cell() of a cell 2 GiB long returned")
        hive.close()
        print("ok")
    """, str(path), str(vk))
    assert r.stdout.strip().endswith("ok")


def test_deleted_survives_a_close_during_its_loop(tmp_path):
    """Hive.deleted() reads each deleted big value with the GIL released, and
    the records' names from the mapping between those reads: a close() from
    another thread (here, deterministically, from a gc callback that runs
    while deleted() builds its results) must wait for it to finish, not unmap
    the file under it."""
    data, layout = build_hive({"Gone": {f"v{i:02d}": bytes([i]) * 40000 for i in range(12)}}, leaf_max=256)
    data = bytearray(data)
    for name in [f"v{i:02d}" for i in range(12)]:
        for off in (layout.vk[("Gone", name)],):
            size, = struct.unpack_from("<i", data, off)
            struct.pack_into("<i", data, off, abs(size))
    path = tmp_path / "gone.hiv"
    path.write_bytes(data)
    r = run_isolated(r"""
        import gc, sys
        import regfast
        hive = regfast.open_hive(sys.argv[1], logs=None)
        closed = []
        def close_it(phase, info):
            if phase == "start" and not closed:
                closed.append(1)
                hive.close()
        gc.set_threshold(1)
        gc.callbacks.append(close_it)
        try:
            got = hive.deleted()
        finally:
            gc.callbacks.remove(close_it)
            gc.set_threshold(700)
        assert closed and hive.closed
        assert sum(1 for d in got if getattr(d, "data", None) == bytes([3]) * 40000) == 1, \
            [(d.name, d.state) for d in got]
        print("ok", len(got))
    """, str(path))
    assert "ok" in r.stdout
