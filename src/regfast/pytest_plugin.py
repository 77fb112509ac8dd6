"""regfast's pytest plugin: fixtures for projects whose code touches the registry.

Installed with regfast (``pytest11`` entry point ``regfast``, loaded through
the small ``_regfast_pytest`` module, which imports neither regfast nor
numpy: a pytest run pays nothing until a test asks for a fixture). Nothing
runs and nothing changes unless a test uses one of:

``hive_factory``
    Builds a throwaway hive file with regfast's writer from a dict (the
    writer's shorthand: str -> REG_SZ, int -> REG_DWORD/QWORD, bytes ->
    REG_BINARY, list[str] -> REG_MULTI_SZ, ``regfast.io.writer.Value`` for
    any type) or from ``.reg`` text (:func:`regfast.io.regfile.parse_reg`)::

        def test_reads_run_key(hive_factory):
            hive = hive_factory({"Microsoft": {"Windows": {"CurrentVersion": {"Run": {"x": "c:\\\\x.exe"}}}}})
            assert my_tool.autoruns(hive) == ["c:\\\\x.exe"]        # an open regfast.Hive

        def test_cli_on_a_file(hive_factory):
            path = hive_factory.path('''Windows Registry Editor Version 5.00

            [HKEY_LOCAL_MACHINE\\\\SOFTWARE\\\\Vendor]
            "Count"=dword:00000003
            ''', prefix=r"HKEY_LOCAL_MACHINE\\SOFTWARE")          # a pathlib.Path
            assert run_my_cli(path) == 0

    Files live in the test's ``tmp_path``; opened hives are closed after the test.
    Hives are reproducible: the writer's ``timestamp`` (every key's last-write
    time) defaults to 2020-01-01 00:00 UTC here, not "now", so two hives of one
    spec are byte-identical and diff as the same (pass ``timestamp=None`` for
    the current time). ``name=`` picks the file's name: building a hive under
    a name already used replaces the file (atomically: a hive already open on
    the old file keeps reading the old one, as after the writer's own
    ``write_hive``).

``wine_registry``
    The live registry API on Linux: a private Wine prefix (``wineboot -i``
    once per session, in a temporary directory, removed at the end) with
    regfast-agent connected — a :class:`regfast.Registry`, the same API
    as on Windows. The prefix is shared by the session's tests (give keys
    test-specific names); ``wine_prefix`` has its path, environment and a
    ``run()`` for ``wine reg ...``. Skips, saying why, where Wine is not
    installed or regfast-agent.exe is neither built (``python -m
    regfast.live.agent build``) nor buildable (mingw-w64 + cmake + a source tree).

``registry_profile``
    A :class:`regfast.observe.profile.Profiler` recording every regfast operation of
    the test — a regression test for access patterns::

        def test_settings_are_read_in_one_round_trip(wine_registry, registry_profile):
            load_settings(wine_registry)
            assert registry_profile.count("open_key", path=r"Software\\MyApp") <= 1
            assert not registry_profile.open_each()        # no open/close loops
            assert registry_profile.round_trips() <= 3

    What it sees is what :mod:`regfast.observe.hooks` sees: every rf_* call
    of the C library (reads of a hive file through ``Hive``/``Key`` —
    ``count("open_key", path=r"Vendor\\App")`` counts them by key path —, the
    live registry through the C remote backend, the NT backend), every request
    of the Python agent client (``regfast.connect()``, the in-process core on
    Windows) and each :func:`regfast.open_hive`. It starts when the fixture
    is set up (after a garbage collection, so that a hive an earlier test
    left behind is not closed inside this test's profile): what fixtures set
    up before it did is not counted.
"""

from __future__ import annotations

import contextlib
import gc
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import regfast
from regfast.io.regfile import parse_reg
from regfast.io.writer import Key, build_hive
from regfast.live import agent as _agent
from regfast.observe.profile import Profiler

__all__ = ["FIXED_TIMESTAMP", "HiveFactory", "WinePrefix", "wine_unavailable", "profile_during"]

#: hive_factory's default ``timestamp``: 2020-01-01 00:00:00 UTC as a FILETIME
FIXED_TIMESTAMP = 132_223_104_000_000_000


class HiveFactory:
    """``hive_factory(spec, **writer_kwargs)`` -> an open regfast.Hive;
    ``hive_factory.path(spec, **writer_kwargs)`` -> the file's Path.

    ``spec`` is a dict or :class:`regfast.io.writer.Key` (see
    :func:`regfast.io.writer.build_hive`, whose keyword arguments pass through:
    ``file_name=``, ``minor=``, ``timestamp=``...) or .reg text (``prefix=``
    strips a root such as ``HKEY_LOCAL_MACHINE\\SOFTWARE``). ``timestamp``
    defaults to :data:`FIXED_TIMESTAMP`; ``name=`` names the file (see the
    module's docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._opened: list[regfast.Hive] = []
        self._n = 0

    def path(
        self,
        spec: dict[str, Any] | Key | str,
        *,
        name: str | None = None,
        prefix: str | None = None,
        **writer_kwargs: Any,
    ) -> Path:
        if isinstance(spec, str):
            tree: dict[str, Any] | Key = parse_reg(spec, prefix=prefix)
        elif isinstance(spec, (dict, Key)):
            if prefix is not None:
                raise TypeError("prefix= applies to .reg text only")
            tree = spec
        else:
            raise TypeError(
                f"a hive is built from a dict, a regfast.io.writer.Key or .reg text, "
                f"not {type(spec).__name__}"
            )
        writer_kwargs.setdefault("timestamp", FIXED_TIMESTAMP)
        data, _ = build_hive(tree, **writer_kwargs)
        if name is None:
            while True:  # (an automatic name never takes an explicit one's file)
                self._n += 1
                out = self.directory / f"hive{self._n}.hiv"
                if not out.exists():
                    break
        else:
            out = self.directory / name
        # Written aside, then renamed over: writing in place would change
        # the file under a hive opened on it earlier (a before/after test
        # reusing a name then read "after" twice and diffed as the same).
        # Beside the file (a name= elsewhere, another file system: a rename
        # across them fails), with the mode a plain write gives (mkstemp's
        # is 0600).
        # (a short name of its own: the target's name + a suffix could pass
        # the file system's 255 bytes where the target's fits)
        tmp = out.with_name(f".hive-{secrets.token_hex(6)}.tmp")
        f = open(tmp, "xb")  # noqa: SIM115  (before the try: a name another holds is not ours to remove)
        try:
            with f:
                f.write(data)
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return out

    def __call__(
        self, spec: dict[str, Any] | Key | str, *, prefix: str | None = None, **writer_kwargs: Any
    ) -> regfast.Hive:
        hive = regfast.open_hive(self.path(spec, prefix=prefix, **writer_kwargs))
        self._opened.append(hive)
        return hive

    def close(self) -> None:
        for h in self._opened:
            h.close()
        self._opened.clear()


def wine_unavailable() -> str | None:
    """Why the wine_registry fixture cannot run here, or None."""
    for tool, pkg in (("wine", "wine / wine64"), ("wineboot", "wine / wine64")):
        if not shutil.which(tool):
            return f"{tool} is not installed (Debian package {pkg}): no Wine registry for this test"
    if _agent.find_agent() is None:
        env = os.environ.get("REGFAST_AGENT")
        if env:
            return f"$REGFAST_AGENT={env!r} does not exist"
        missing = [t for t in ("x86_64-w64-mingw32-gcc", "cmake") if not shutil.which(t)]
        if missing or _agent.source_dir() is None:
            why = f"{', '.join(missing)} missing" if missing else "no regfast source tree"
            return (
                "regfast-agent.exe is not built (python -m regfast.live.agent build) and cannot be "
                f"built here ({why})"
            )
    return None


class WinePrefix:
    """A private Wine prefix (booted on first use) and the agent in it."""

    def __init__(self) -> None:
        self.prefix = tempfile.mkdtemp(prefix="regfast-pytest-wine-")
        self.env = dict(
            os.environ, WINEPREFIX=self.prefix, WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml="
        )
        self.exe = _agent.find_agent() or _agent.build_agent()
        self.wine = shutil.which("wine") or "wine"
        r = subprocess.run(["wineboot", "-i"], env=self.env, capture_output=True, timeout=300)
        if r.returncode != 0:
            self.close()
            raise RuntimeError(f"wineboot -i failed ({r.returncode}): {r.stderr[-2000:]!r}")
        self._registries: list[Any] = []

    def connect(self, timeout: float = 60.0) -> Any:
        """A new regfast.Registry served by the agent under this prefix."""
        reg = regfast.connect([self.wine, str(self.exe)], env=self.env, timeout=timeout)
        self._registries.append(reg)
        return reg

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``wine ARGS...`` in this prefix (e.g. ``run("reg", "query", r"HKCU\\Software")``)."""
        r = subprocess.run([self.wine, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise subprocess.CalledProcessError(r.returncode, r.args, r.stdout, r.stderr)
        return r

    def close(self) -> None:
        for reg in self._registries:
            try:
                reg.close()
            except OSError:
                pass
        self._registries.clear()
        ws = shutil.which("wineserver") or "/usr/lib/wine/wineserver"
        try:
            subprocess.run([ws, "-k"], env=self.env, capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.prefix, ignore_errors=True)


def profile_during() -> Iterator[Profiler]:
    """The registry_profile fixture's body: a profiler on for the test.

    Garbage is collected first: a hive an earlier test left in a reference
    cycle would otherwise be closed (an rf_* operation, recorded) whenever
    the collector runs, in whichever test's profile that is."""
    gc.collect()
    prof = Profiler()
    with prof:
        yield prof
