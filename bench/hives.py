"""Benchmark hives: generated once with regfast's own writer, then cached.

The hives imitate a Windows SOFTWARE hive: a Classes tree with a CLSID key of
thousands of subkeys, an Installer components key of thousands more, an
Uninstall tree of products with a dozen values each, a random "vendor" forest
reaching depth ~12, a Wow6432Node copy of part of it, device-property values
of types 0xFFFF00xx under Setup\\Upgrade\\PnP (some of them 1-byte inline
values: the trap in peer-lessons.md), and a few big-data (> 16 KB) values.

Value type mix (by count): ~50 % REG_SZ short strings, ~25 % REG_DWORD,
~10 % REG_BINARY (mostly small), ~5 % REG_EXPAND_SZ, ~4 % REG_MULTI_SZ,
~3 % REG_QWORD, ~1 % REG_NONE, plus the device properties and big values.

Everything is drawn from a seeded ``random.Random``: one generator version
gives byte-identical hives on every machine. The cache lives in
``$REGFAST_BENCH_CACHE`` or ``bench/.cache/`` and every file name carries
``GEN_VERSION``: bump it whenever the generator changes.

Each hive ``NAME`` comes with ``NAME-vN.meta.json``: key/value counts the
generator wrote, the 1,000 lookup paths, and every 0xFFFF00xx value with its
length.

Run ``python bench/hives.py`` to (re)build the cache and print the sizes.
"""
from __future__ import annotations

import json
import os
import random
import string
import sys
import time
from pathlib import Path

GEN_VERSION = 2

#: name -> key budget (the SOFTWARE-like generator) or a special builder.
#: The budgets are tuned so that the files come out near 1, 5 and 100 MB.
SOFTWARE_SPECS = {
    "software-1MB": 2_600,
    "software-5MB": 14_000,
    "software-100MB": 280_000,
}
#: one key holding 10,000 REG_SZ values of 256 bytes each
WIDE_KEY_VALUES = 10_000
WIDE_KEY_DATA_BYTES = 256
WIDE_KEY_PATH = r"Wide\Values"

LOOKUPS = 1_000
BIG_VALUE_MIN = 16 * 1024 + 1

HERE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    d = Path(os.environ.get("REGFAST_BENCH_CACHE") or HERE / ".cache")
    d.mkdir(parents=True, exist_ok=True)
    return d


def hive_path(name: str) -> Path:
    return cache_dir() / f"{name}-v{GEN_VERSION}.hiv"


def meta_path(name: str) -> Path:
    return cache_dir() / f"{name}-v{GEN_VERSION}.meta.json"


# ---------------------------------------------------------------------------
# vocabulary
# ---------------------------------------------------------------------------

_WORDS = """
Microsoft Windows Explorer Shell Policies System Current Version Control Settings
Update Services Network Security Display Driver Device Audio Video Media Player
Office Common Client Server Cache Config Manager Service Provider Profile User
Internet Web Browser Search Index Store Package Component Feature Runtime Framework
Debug Trace Log Event Session Startup Run Install Uninstall Setup Upgrade Backup
Restore Print Font Input Keyboard Mouse Pointer Power Battery Storage Volume Disk
Shadow Copy Cloud Sync Mail Calendar Contacts Photos Camera Maps Location Privacy
Telemetry Diagnostics Defender Firewall Crypto Certificate Trust Policy Group Local
Remote Desktop Terminal Console Command Script Task Scheduler Job Queue Worker Agent
Adobe Google Mozilla Oracle Intel NVIDIA Realtek Logitech Dell Lenovo Apple Valve
Steam Java Python Node Git Visual Studio Code Edge Chrome Firefox Acrobat Reader
Options Preferences Advanced General Default Recent History Favorites Layout Theme
Colors Sounds Icons Cursors Language Region Format Time Zone Clock Sync Proxy Auth
Token Key Value Data Path Folder File Name Type Class Object Handler Filter Codec
""".split()

_PUBLISHERS = [
    "Microsoft Corporation", "Adobe Inc.", "Google LLC", "Mozilla", "Oracle Corporation",
    "Intel Corporation", "NVIDIA Corporation", "Realtek Semiconductor Corp.",
    "Logitech", "Dell Inc.", "Lenovo", "Apple Inc.", "Valve Corporation",
    "Python Software Foundation", "The Git Development Community", "7-Zip",
    "VideoLAN", "Notepad++ Team", "Zoom Video Communications, Inc.",
]

_PATH_ROOTS = [
    r"C:\Program Files", r"C:\Program Files (x86)", r"C:\Windows\System32",
    r"C:\Windows\SysWOW64", r"%SystemRoot%\System32", r"%ProgramFiles%",
    r"%CommonProgramFiles%\Microsoft Shared", r"C:\ProgramData",
]


class Gen:
    """Seeded random helpers producing registry-looking names and data."""

    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def word(self) -> str:
        return self.r.choice(_WORDS)

    def camel(self, lo: int = 1, hi: int = 3) -> str:
        return "".join(self.word() for _ in range(self.r.randint(lo, hi)))

    def guid(self) -> str:
        h = "%032X" % self.r.getrandbits(128)
        return "{%s-%s-%s-%s-%s}" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])

    def packed_guid(self) -> str:
        return "%032X" % self.r.getrandbits(128)

    def path(self) -> str:
        r = self.r
        parts = [r.choice(_PATH_ROOTS)] + [self.camel(1, 2) for _ in range(r.randint(1, 3))]
        ext = r.choice([".dll", ".exe", ".sys", ".ocx", ".cpl", ".mui", ".dat", ""])
        return "\\".join(parts) + ext

    def text(self) -> str:
        """A short REG_SZ: a name, a version, a path, a word or a number."""
        r = self.r
        k = r.random()
        if k < 0.35:
            return " ".join(self.word() for _ in range(r.randint(1, 3)))
        if k < 0.50:
            return self.path()
        if k < 0.65:
            return "%d.%d.%d.%d" % (r.randint(1, 20), r.randint(0, 9), r.randint(0, 30000),
                                   r.randint(0, 9999))
        if k < 0.73:
            return self.guid()
        if k < 0.88:
            return str(r.randint(0, 10 ** r.randint(1, 6)))
        if k < 0.97:
            return ""
        return "".join(r.choice(string.ascii_letters + string.digits + " ._-")
                       for _ in range(r.randint(20, 80)))

    def binary(self) -> bytes:
        r = self.r
        n = r.choice([4, 8, 8, 12, 16, 16, 20, 24, 32]) if r.random() < 0.8 else r.randint(1, 300)
        return r.getrandbits(8 * n).to_bytes(n, "little")

    def value(self):
        """One value of the realistic type mix (writer shorthand or Value)."""
        from regfast.io.writer import (REG_EXPAND_SZ, REG_MULTI_SZ, REG_NONE, REG_QWORD,
                                    Value)
        r = self.r
        k = r.random()
        if k < 0.50:
            return self.text()                                   # REG_SZ
        if k < 0.75:
            return r.choice([0, 1, 2, 0xFFFFFFFF, r.getrandbits(32), r.randint(0, 100)])
        if k < 0.85:
            return self.binary()                                 # REG_BINARY
        if k < 0.90:
            return Value(REG_EXPAND_SZ, self.path())
        if k < 0.94:
            return [self.word() for _ in range(r.randint(0, 4))]  # REG_MULTI_SZ
        if k < 0.97:
            return Value(REG_QWORD, r.getrandbits(64))
        if k < 0.98:
            return Value(REG_NONE, b"")
        return Value(REG_MULTI_SZ, [self.path() for _ in range(r.randint(1, 3))])


def put(node: dict, name: str, item, lower: set) -> str:
    """Adds a value or subkey under a name unique case-insensitively
    (`lower` holds the node's names, lowercased)."""
    base, i = name, 1
    while name.lower() in lower:
        i += 1
        name = f"{base}{i}" if base else f"Value{i}"
    lower.add(name.lower())
    node[name] = item
    return name


class Builder:
    """Grows a dict tree with a key budget and remembers what it wrote."""

    def __init__(self, seed: int, budget: int):
        self.g = Gen(seed)
        self.r = self.g.r
        self.budget = budget
        self.keys = 1           # the root
        self.values = 0
        self.tree: dict = {}
        self.value_paths: list[tuple[str, str]] = []   # reservoir for lookups
        self.seen_values = 0
        self.devprops: list[dict] = []
        self.big: list[dict] = []
        self.lower: dict[int, set] = {}   # id(node) -> lowercased names

    # -- bookkeeping ---------------------------------------------------
    def names(self, node: dict) -> set:
        s = self.lower.get(id(node))
        if s is None:
            s = self.lower[id(node)] = {k.lower() for k in node}
        return s

    def key(self, parent: dict, name: str) -> tuple[dict, str]:
        node: dict = {}
        name = put(parent, name, node, self.names(parent))
        self.keys += 1
        return node, name

    def chain(self, node: dict, path: str, parts: list[str]) -> tuple[dict, str]:
        """New keys parent\\a\\b\\...; returns the last one and its path."""
        for part in parts:
            node, name = self.key(node, part)
            path = f"{path}\\{name}" if path else name
        return node, path

    def fill(self, node: dict, path: str, n: int) -> None:
        """n values of the realistic mix with random names."""
        for _ in range(n):
            name = self.g.camel(1, 3) if self.r.random() > 0.05 else ""
            self.val(node, path, name, self.g.value())

    def val(self, node: dict, path: str, name: str, item) -> str:
        name = put(node, name, item, self.names(node))
        self.note_value(path, name)
        return name

    def note_value(self, path: str, name: str) -> None:
        self.values += 1
        self.seen_values += 1
        # reservoir sample of LOOKUPS value paths, uniform over the hive
        if len(self.value_paths) < LOOKUPS:
            self.value_paths.append((path, name))
        else:
            j = self.r.randrange(self.seen_values)
            if j < LOOKUPS:
                self.value_paths[j] = (path, name)

    # -- sections ------------------------------------------------------
    def build(self) -> dict:
        B = self.budget
        # Every path is built from the names key() returns: a name already
        # taken in the node (by a random value name, say) gets a suffix.
        classes, cname = self.key(self.tree, "Classes")
        self.extensions(classes, cname, int(B * 0.04))
        self.clsids(classes, cname, int(B * 0.05))
        self.interfaces(classes, cname, int(B * 0.03))
        ms, msname = self.key(self.tree, "Microsoft")
        cv, base = self.chain(ms, msname, ["Windows", "CurrentVersion"])
        self.fill(cv, base, 12)
        self.uninstall(cv, base, max(3, int(B * 0.01)))
        self.components(cv, base, int(B * 0.05))
        ntcv, ntpath = self.chain(ms, msname, ["Windows NT", "CurrentVersion"])
        self.ntcurrentversion(ntcv, ntpath)
        self.devprops_section(max(2, B // 1000))
        # the random forest takes what is left, minus a Wow6432Node share
        rest = B - self.keys
        wow, wname = self.key(self.tree, "Wow6432Node")
        self.forest(wow, wname, int(rest * 0.15))
        self.forest(ms, "Microsoft", B - self.keys)
        self.big_values(max(2, B // 8000))
        self.verify()
        return self.tree

    def verify(self) -> None:
        """Every path recorded for the benchmarks names a value of the tree."""
        items = ([tuple(x) for x in self.value_paths]
                 + [(d["path"], d["name"]) for d in self.devprops + self.big])
        for kp, vn in items:
            node = self.tree
            for part in kp.split("\\"):
                node = node[part]
                assert isinstance(node, dict), (kp, part)
            assert vn in node and not isinstance(node[vn], dict), (kp, vn)

    def extensions(self, classes: dict, path: str, n: int) -> None:
        r = self.r
        for _ in range(n // 2):
            ext = "." + "".join(r.choice(string.ascii_lowercase) for _ in range(r.randint(2, 5)))
            node, name = self.key(classes, ext)
            p = f"{path}\\{name}"
            prog = f"{self.g.word()}.{self.g.word()}.{r.randint(1, 20)}"
            self.val(node, p, "", prog)
            if r.random() < 0.5:
                self.val(node, p, "Content Type", f"{r.choice(['application', 'text', 'image', 'video'])}/{name[1:]}")
            if r.random() < 0.3:
                self.val(node, p, "PerceivedType", r.choice(["text", "image", "audio", "video", "document"]))
            owp, oname = self.key(node, "OpenWithProgids")
            from regfast.io.writer import REG_NONE, Value
            self.val(owp, f"{p}\\{oname}", prog, Value(REG_NONE, b""))

    def clsids(self, classes: dict, path: str, n: int) -> None:
        from regfast.io.writer import REG_EXPAND_SZ, Value
        r = self.r
        clsid, cname = self.key(classes, "CLSID")
        path += "\\" + cname
        count = n // 3           # ~3 keys each: thousands of subkeys under CLSID
        for _ in range(count):
            node, name = self.key(clsid, self.g.guid())
            p = f"{path}\\{name}"
            self.val(node, p, "", self.g.camel(2, 4))
            ips, iname = self.key(node, "InprocServer32")
            self.val(ips, f"{p}\\{iname}", "", Value(REG_EXPAND_SZ, self.g.path()))
            self.val(ips, f"{p}\\{iname}", "ThreadingModel",
                     r.choice(["Apartment", "Both", "Free", "Neutral"]))
            if r.random() < 0.5:
                pid, pname = self.key(node, "ProgID")
                self.val(pid, f"{p}\\{pname}", "", f"{self.g.word()}.{self.g.word()}.1")
            if r.random() < 0.2:
                ic, _ = self.key(node, "Implemented Categories")
                self.key(ic, self.g.guid())

    def interfaces(self, classes: dict, path: str, n: int) -> None:
        itf, iname = self.key(classes, "Interface")
        path += "\\" + iname
        for _ in range(n // 2):
            node, name = self.key(itf, self.g.guid())
            p = f"{path}\\{name}"
            self.val(node, p, "", "I" + self.g.camel(1, 3))
            ps, psname = self.key(node, "ProxyStubClsid32")
            self.val(ps, f"{p}\\{psname}", "", self.g.guid())
            if self.r.random() < 0.5:
                self.val(node, p, "NumMethods", str(self.r.randint(3, 40)))

    def uninstall(self, cv: dict, path: str, n: int) -> None:
        from regfast.io.writer import REG_EXPAND_SZ, Value
        r = self.r
        un, uname = self.key(cv, "Uninstall")
        path += "\\" + uname
        for _ in range(n):
            node, name = self.key(un, self.g.guid() if r.random() < 0.7 else self.g.camel(1, 3))
            p = f"{path}\\{name}"
            loc = self.g.path()
            for vn, v in [
                ("DisplayName", " ".join(self.g.word() for _ in range(r.randint(1, 4)))),
                ("DisplayVersion", "%d.%d.%d" % (r.randint(1, 30), r.randint(0, 9), r.randint(0, 999))),
                ("Publisher", r.choice(_PUBLISHERS)),
                ("InstallLocation", loc),
                ("InstallDate", "20%02d%02d%02d" % (r.randint(10, 24), r.randint(1, 12), r.randint(1, 28))),
                ("UninstallString", f'MsiExec.exe /X{self.g.guid()}'),
                ("DisplayIcon", Value(REG_EXPAND_SZ, loc + ",0")),
                ("EstimatedSize", r.randint(100, 4_000_000)),
                ("NoModify", 1), ("NoRepair", 1), ("Language", 1033),
                ("VersionMajor", r.randint(1, 30)), ("VersionMinor", r.randint(0, 9)),
            ]:
                if r.random() < 0.9:
                    self.val(node, p, vn, v)

    def components(self, cv: dict, path: str, n: int) -> None:
        comps, path = self.chain(cv, path, ["Installer", "UserData", "S-1-5-18", "Components"])
        for _ in range(n):
            node, name = self.key(comps, self.g.packed_guid())
            p = f"{path}\\{name}"
            for _ in range(self.r.randint(1, 3)):
                self.val(node, p, self.g.packed_guid(), self.g.path())

    def ntcurrentversion(self, node: dict, path: str) -> None:
        r = self.r
        for vn, v in [
            ("ProductName", "Windows 10 Pro"), ("EditionID", "Professional"),
            ("CurrentBuild", "19045"), ("CurrentMajorVersionNumber", 10),
            ("CurrentMinorVersionNumber", 0), ("InstallDate", r.getrandbits(31)),
            ("DigitalProductId", r.getrandbits(8 * 164).to_bytes(164, "little")),
            ("DigitalProductId4", r.getrandbits(8 * 1272).to_bytes(1272, "little")),
            ("RegisteredOwner", "bench"), ("SystemRoot", r"C:\WINDOWS"),
        ]:
            self.val(node, path, vn, v)

    def devprops_section(self, n_devices: int) -> None:
        """Setup\\Upgrade\\PnP\\CurrentControlSet\\Control\\DeviceMigration\\
        Devices\\<dev>\\Properties\\{guid}\\NNNN with the default value of a
        0xFFFF00xx type, as Windows 10 SYSTEM hives hold them (depth 11)."""
        from regfast.io.writer import Value
        r = self.r
        node, p = self.tree, ""
        for part in ["Setup", "Upgrade", "PnP", "CurrentControlSet", "Control",
                     "DeviceMigration", "Devices"]:
            node, name = self.key(node, part)
            p = f"{p}\\{name}" if p else name
        # DEVPROP_TYPE_*: 0x11 BOOLEAN (1 byte), 0x07 UINT32, 0x10 FILETIME,
        # 0x0D GUID, 0x12 STRING, 0x2012 STRING_LIST, 0x1003 BINARY
        kinds = [(0x11, lambda: b"\xff" if r.random() < 0.5 else b"\x00"),
                 (0x07, lambda: r.getrandbits(32).to_bytes(4, "little")),
                 (0x10, lambda: r.getrandbits(63).to_bytes(8, "little")),
                 (0x0D, lambda: r.getrandbits(128).to_bytes(16, "little")),
                 (0x12, lambda: (self.g.text() + "\0").encode("utf-16-le")),
                 (0x2012, lambda: ("\0".join(self.g.text() for _ in range(2)) + "\0\0").encode("utf-16-le")),
                 (0x1003, lambda: self.g.binary())]
        for _ in range(n_devices):
            dev, dname = self.key(node, "%s#VEN_%04X&DEV_%04X#%d" % (
                r.choice(["PCI", "USB", "HID", "ACPI", "SWD"]), r.getrandbits(16), r.getrandbits(16),
                r.randint(0, 9)))
            props, prname = self.key(dev, "Properties")
            dp = f"{p}\\{dname}\\{prname}"
            for _ in range(r.randint(1, 3)):
                g, gname = self.key(props, self.g.guid())
                for pid in r.sample(range(2, 40), r.randint(1, 4)):
                    leaf, lname = self.key(g, "%04d" % pid)
                    t, make = r.choice(kinds)
                    data = make()
                    vtype = 0xFFFF0000 | t
                    lp = f"{dp}\\{gname}\\{lname}"
                    self.val(leaf, lp, "", Value(vtype, data))
                    self.devprops.append({"path": lp, "name": "", "type": vtype,
                                          "length": len(data)})

    def forest(self, parent: dict, path: str, budget: int) -> None:
        """Random subtrees down to depth ~12 with a realistic fan-out."""
        r = self.r
        start = self.keys
        depth0 = path.count("\\") + 1
        while self.keys - start < budget:
            node, name = self.key(parent, self.g.camel(1, 2))
            self.fill(node, f"{path}\\{name}", r.choice([0, 1, 2, 3, 4, 6, 8]))
            self._grow(node, f"{path}\\{name}", depth0 + 1, start + budget)

    def _grow(self, node: dict, path: str, depth: int, stop: int) -> None:
        r = self.r
        if depth >= 12:
            return
        fan = r.choice([0, 0, 1, 1, 2, 3, 4, 6, 10]) if depth > 2 else r.randint(4, 20)
        for _ in range(fan):
            if self.keys >= stop:
                return
            name = self.g.camel(1, 2) if r.random() < 0.8 else self.g.guid()
            child, cname = self.key(node, name)
            cp = f"{path}\\{cname}"
            nvals = r.choice([0, 1, 2, 2, 3, 3, 4, 4, 5, 6, 8])
            self.fill(child, cp, nvals)
            self._grow(child, cp, depth + 1, stop)

    def big_values(self, n: int) -> None:
        """A few big-data values (> 16 KB, stored as db segment lists)."""
        r = self.r
        node, p = self.tree, ""
        for part in ["Microsoft", "Windows", "CurrentVersion", "Explorer", "TrayNotify"]:
            if isinstance(node.get(part), dict):
                node = node[part]
            else:
                node, part = self.key(node, part)
            p = f"{p}\\{part}" if p else part
        for i in range(n):
            size = r.choice([BIG_VALUE_MIN + r.randint(0, 4000), r.randint(20_000, 120_000),
                             r.randint(120_000, 400_000)])
            data = r.getrandbits(8 * size).to_bytes(size, "little")
            name = self.val(node, p, f"IconStreams{i}", data)
            self.big.append({"path": p, "name": name, "length": size})


def build_software(name: str, budget: int) -> dict:
    from regfast.io.writer import write_hive
    b = Builder(seed=hash_name(name), budget=budget)
    tree = b.build()
    t0 = time.perf_counter()
    write_hive(hive_path(name), tree, timestamp=132_000_000_000_000_000, root_name="ROOT")
    meta = {
        "name": name, "gen_version": GEN_VERSION, "keys": b.keys, "values": b.values,
        "lookups": [list(x) for x in b.value_paths], "devprops": b.devprops,
        "big": b.big, "write_seconds": time.perf_counter() - t0,
    }
    return meta


def build_wide(name: str) -> dict:
    from regfast.io.writer import write_hive
    g = Gen(hash_name(name))
    node: dict = {}
    names = []
    chars = WIDE_KEY_DATA_BYTES // 2 - 1          # + NUL = 256 bytes of UTF-16
    for i in range(WIDE_KEY_VALUES):
        vn = f"Setting{i:05d}{g.camel(1, 2)}"
        names.append(vn)
        s = "".join(g.r.choice(string.ascii_letters + string.digits + " ._-\\") for _ in range(chars))
        node[vn] = s
    tree = {"Wide": {"Values": node}}
    write_hive(hive_path(name), tree, timestamp=132_000_000_000_000_000)
    return {"name": name, "gen_version": GEN_VERSION, "keys": 3, "values": WIDE_KEY_VALUES,
            "key": WIDE_KEY_PATH, "names": names, "lookups": [], "devprops": [], "big": []}


def hash_name(name: str) -> int:
    import zlib
    return zlib.crc32(name.encode()) ^ (GEN_VERSION << 20)


ALL = list(SOFTWARE_SPECS) + ["wide-10k"]


def ensure(name: str, log=print) -> tuple[Path, dict]:
    """Returns (hive path, meta), building and caching the hive if needed."""
    hp, mp = hive_path(name), meta_path(name)
    if hp.exists() and mp.exists():
        return hp, json.loads(mp.read_text())
    for old in cache_dir().glob(f"{name}-v*.*"):      # other generator versions
        if old not in (hp, mp):
            old.unlink()
    t0 = time.perf_counter()
    log(f"[bench] generating {hp.name} (cached afterwards) ...")
    meta = build_wide(name) if name == "wide-10k" else build_software(name, SOFTWARE_SPECS[name])
    meta["size"] = hp.stat().st_size
    tmp = mp.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, mp)
    log(f"[bench] {hp.name}: {meta['size'] / 1e6:.1f} MB, {meta['keys']} keys, "
        f"{meta['values']} values, {time.perf_counter() - t0:.0f} s")
    return hp, meta


if __name__ == "__main__":
    for n in (sys.argv[1:] or ALL):
        p, m = ensure(n)
        print(f"{p}: {m['size']:,} bytes, {m['keys']:,} keys, {m['values']:,} values, "
              f"{len(m['devprops'])} device properties, {len(m['big'])} big values")
