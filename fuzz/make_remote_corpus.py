#!/usr/bin/env python3
"""Seed inputs for fuzz_remote: the replies a well-behaved agent gives to the
harness's fixed call sequence (fuzz/fuzz_remote.c), as chunks
(u8 flags, u32 length, payload = i32 status + body), plus a few damaged
variants. libFuzzer mutates from there into every decoder."""
from __future__ import annotations

import struct
import sys
from pathlib import Path


def s16(s: str) -> bytes:
    b = s.encode("utf-16-le")
    return struct.pack("<I", len(b)) + b


def chunk(body: bytes, status: int = 0, flags: int = 0) -> bytes:
    p = struct.pack("<I", status) + body
    return struct.pack("<BI", flags, len(p)) + p


def key_info(name: str) -> bytes:
    return struct.pack("<QIIIIIII", 132000000000000000, 2, 1, 10, 0, 4, 4, 0) + s16("") + s16(name)


def snapshot(keys: list[tuple[str, list[tuple[str, bytes]]]]) -> bytes:
    out = struct.pack("<II", len(keys), 0)
    for path, vals in keys:
        out += s16(path) + struct.pack("<QQI", 1, 3, len(vals))
        for name, data in vals:
            out += s16(name) + struct.pack("<IIQ", 3, len(data), 0)
    return out


def columns(rows: list[tuple[int, int, bytes, str | None]]) -> bytes:
    """READ_VALUES columns: (type, status, data, name)."""
    arena = b""
    names = b""
    offs, noff, nlen = [], [], []
    for _t, st, data, name in rows:
        offs.append(len(arena) if st == 0 else 0)
        if st == 0:
            arena += data + b"\0" * ((-len(data)) % 8)
        if name is not None:
            nb = name.encode("utf-16-le")
            noff.append(len(names))
            nlen.append(len(nb))
            names += nb
        else:
            noff.append(0)
            nlen.append(0)
    n = len(rows)
    out = struct.pack("<III", n, len(arena), len(names))
    out += struct.pack(f"<{n}I", *[r[0] for r in rows]) + struct.pack(f"<{n}i", *[r[1] for r in rows])
    out += struct.pack(f"<{n}I", *[len(r[2]) for r in rows]) + struct.pack(f"<{n}Q", *offs)
    out += struct.pack(f"<{n}I", *noff) + struct.pack(f"<{n}I", *nlen)
    return out + names + arena


SD = bytes.fromhex("010004801400000000000000000000000000000001010000000000051200000000")[:20 + 12]


def good() -> bytes:
    c = b"\x00"                                                      # options: HELLO answered
    c += chunk(struct.pack("<II", 5, 2))                             # OPEN_KEY: the root
    c += chunk(struct.pack("<II", 6, 2))                             # OPEN_KEY a\b
    c += chunk(key_info("b")) * 3                                    # info, name, class
    c += chunk(struct.pack("<I", 2) + struct.pack("<Q", 1) + s16("x") + struct.pack("<Q", 1) + s16("y"))
    c += chunk(columns([(4, 0, b"\1\0\0\0", "v")]))                  # key_values
    c += chunk(struct.pack("<II", 4, 4) + b"\1\0\0\0")               # GET_VALUE v
    c += chunk(columns([(1, 0, "hello world!".encode("utf-16-le"), None), (0, 2, b"", None)]))
    c += chunk(columns([(4, 0, b"\1\0\0\0", "v"), (3, 0, b"xyz", "w")]))
    c += chunk(struct.pack("<II", 5, len(SD)) + SD + struct.pack("<I", 0))
    c += chunk(snapshot([("", [("v", b"abc")]), ("x", [])]))
    c += chunk(struct.pack("<II", 1, 1) + snapshot([("", [])]))      # WATCH
    c += chunk(struct.pack("<IIQQ", 1, 0, 1, 0) + snapshot([("", [])]), flags=4)   # an event, then UNWATCH
    c += chunk(b"")                                                  # SET_VALUE
    c += chunk(struct.pack("<II", 7, 1))                             # OPEN_KEY create
    c += chunk(b"") * 4                                              # RENAME and CLOSE_KEYs
    c += chunk(b"") * 2                                              # DELETE_KEY
    return c


def main(out: str) -> int:
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    g = good()
    seeds = {
        "good": g,
        "hello-bad": b"\x01" + chunk(struct.pack("<H", 9)),
        "error": b"\x00" + chunk(struct.pack("<II", 5, 2)) + chunk(struct.pack("<qI", -1, 4) + b"gone", status=1018),
        "cut": g[:40] + bytes([8]) + g[41:],
        "wrong-id": g[:40] + bytes([1]) + g[41:],
        "bad-crc": g[:35] + bytes([32]) + g[36:],                   # KEY_INFO with a wrong trailer
        "truncated": g[: len(g) // 2],
    }
    for name, data in seeds.items():
        (d / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "seeds-remote"))
