"""regfast-agent.exe: building it, finding it, and the command that runs it.

pip cannot build a Windows program on Linux without mingw-w64 in the build
environment, so the wheel does not carry it (a Windows wheel does:
regfast/bin/); instead::

    python -m regfast.live.agent build     # CMake + the mingw-w64 toolchain
    regfast agent-path                     # where it is

builds it from a regfast source tree (this package's own, when installed
from one, or ``$REGFAST_SOURCE_DIR``) into the user cache directory.
``$REGFAST_AGENT`` names a prebuilt one. What it speaks:
:mod:`regfast.live.protocol`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "EXE_NAME",
    "cache_dir",
    "find_agent",
    "agent_path",
    "source_dir",
    "build_agent",
    "default_command",
    "main",
]

# `python -m regfast.live.agent`: `import regfast` (regfast.live.registry) has
# imported this module already; runpy's warning about it is harmless here.
warnings.filterwarnings(
    "ignore", message=r"'regfast\.live\.agent' found in sys\.modules", category=RuntimeWarning
)

EXE_NAME = "regfast-agent.exe"
# this file is regfast/live/agent.py; a Windows wheel puts the exe in regfast/bin
_PACKAGE = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """Where build_agent() puts the agent: $REGFAST_CACHE_DIR, else
    $XDG_CACHE_HOME/regfast, else ~/.cache/regfast (%LOCALAPPDATA% on Windows)."""
    env = os.environ.get("REGFAST_CACHE_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "regfast"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "regfast"


def find_agent() -> Path | None:
    """The agent executable, or None: $REGFAST_AGENT, then one shipped in the
    package (regfast/bin/), then the one build_agent() left in the cache."""
    env = os.environ.get("REGFAST_AGENT")
    if env:
        return Path(env) if os.path.isfile(env) else None
    for p in (_PACKAGE / "bin" / EXE_NAME, cache_dir() / EXE_NAME):
        if p.is_file():
            return p
    return None


def agent_path() -> Path:
    """The agent executable.

    Raises
    ------
    FileNotFoundError
        It was not built (``python -m regfast.live.agent build``), or
        $REGFAST_AGENT names a file that does not exist.
    """
    p = find_agent()
    if p is None:
        env = os.environ.get("REGFAST_AGENT")
        why = (
            f"$REGFAST_AGENT={env!r} does not exist"
            if env
            else "it is not built: run `python -m regfast.live.agent build` (needs cmake and mingw-w64)"
        )
        raise FileNotFoundError(2, f"regfast-agent.exe not found: {why}", env or EXE_NAME)
    return p


def source_dir() -> Path | None:
    """A regfast source tree (top CMakeLists.txt + src/agent): $REGFAST_SOURCE_DIR,
    else the tree this package was imported from, if it was."""
    env = os.environ.get("REGFAST_SOURCE_DIR")
    cands = [Path(env)] if env else []
    cands += [_PACKAGE, *_PACKAGE.parents][:4]  # an installed wheel has no tree above it
    for c in cands:
        if (c / "CMakeLists.txt").is_file() and (c / "src" / "agent" / "CMakeLists.txt").is_file():
            return c
    return None


def _tool(name: str, why: str) -> str:
    p = shutil.which(name)
    if not p:
        raise FileNotFoundError(2, f"{name} is needed to build regfast-agent ({why})", name)
    return p


def build_agent(
    source: str | os.PathLike[str] | None = None,
    build_dir: str | os.PathLike[str] | None = None,
    *,
    dest: str | os.PathLike[str] | None = None,
    quiet: bool = True,
    timeout: float = 900,
) -> Path:
    """Cross-builds regfast-agent.exe with CMake and the mingw-w64 toolchain
    (cmake/mingw-w64-x86_64.cmake). Incremental: a second call only relinks
    what changed.

    Parameters
    ----------
    source
        The regfast source tree (default: :func:`source_dir`).
    build_dir
        CMake build directory (default: <cache>/agent-build).
    dest
        Where to copy the result (default: <cache>/regfast-agent.exe, which
        :func:`find_agent` looks at).

    Returns
    -------
    Path
        The executable at `dest`.

    Raises
    ------
    FileNotFoundError
        No source tree, or cmake / x86_64-w64-mingw32-gcc is missing.
    RuntimeError
        The build failed (its output is in the message).
    """
    src = Path(source) if source else source_dir()
    if src is None:
        raise FileNotFoundError(
            2,
            "no regfast source tree to build regfast-agent from: set $REGFAST_SOURCE_DIR to a checkout",
            "CMakeLists.txt",
        )
    cmake = _tool("cmake", "pip install cmake")
    _tool("x86_64-w64-mingw32-gcc", "Debian package gcc-mingw-w64-x86-64")
    bdir = Path(build_dir) if build_dir else cache_dir() / "agent-build"
    bdir.mkdir(parents=True, exist_ok=True)
    gen = ["-G", "Ninja"] if shutil.which("ninja") and not (bdir / "Makefile").exists() else []
    steps = [
        [
            cmake,
            "-S",
            str(src),
            "-B",
            str(bdir),
            *gen,
            f"-DCMAKE_TOOLCHAIN_FILE={src / 'cmake' / 'mingw-w64-x86_64.cmake'}",
            "-DCMAKE_BUILD_TYPE=Release",
        ],
        [cmake, "--build", str(bdir), "--target", "regfast-agent", "--parallel", "2"],
    ]
    if (bdir / "CMakeCache.txt").is_file():
        steps = steps[1:]  # configured: the build step re-runs CMake itself when needed
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if not quiet:
            sys.stderr.write(r.stdout + r.stderr)
        if r.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
            )
    built = next((p for p in (bdir / "src" / "agent" / EXE_NAME, bdir / EXE_NAME) if p.is_file()), None)
    if built is None:
        raise RuntimeError(f"the build finished but {EXE_NAME} is not under {bdir}")
    out = Path(dest) if dest else cache_dir() / EXE_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_bytes() != built.read_bytes():
        tmp = out.with_name(out.name + ".tmp")
        shutil.copyfile(built, tmp)
        os.replace(tmp, out)
    return out


def default_command(agent: str | os.PathLike[str] | None = None) -> list[str]:
    """The command that runs the agent here: the exe itself on Windows,
    ``wine <exe>`` elsewhere (Wine must be installed)."""
    exe = str(agent or agent_path())
    if sys.platform == "win32":
        return [exe]
    wine = shutil.which("wine") or shutil.which("wine64")
    if not wine:
        raise FileNotFoundError(
            2,
            "wine is needed to run regfast-agent.exe on this system "
            "(or pass connect() a command, e.g. ['ssh', host, 'regfast-agent.exe'])",
            "wine",
        )
    return [wine, exe]


# --- command line -------------------------------------------------------------


def cli_agent_path(args: argparse.Namespace) -> int:
    """``regfast agent-path`` and ``python -m regfast.live.agent path``."""
    p = find_agent()
    if p is None:
        print(
            "regfast: regfast-agent.exe is not built; run `python -m regfast.live.agent build`",
            file=sys.stderr,
        )
        return 1
    print(p)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m regfast.live.agent", description="build or locate regfast-agent.exe"
    )
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="cross-build it with CMake + mingw-w64 into the cache")
    b.add_argument("--source", help="regfast source tree (default: this package's, $REGFAST_SOURCE_DIR)")
    b.add_argument("--build-dir")
    b.add_argument("-o", "--output", help="where to put the exe (default: the cache)")
    b.add_argument("-v", "--verbose", action="store_true")
    sub.add_parser("path", help="print where it is")
    args = p.parse_args(argv)
    if args.command == "path":
        return cli_agent_path(args)
    try:
        out = build_agent(args.source, args.build_dir, dest=args.output, quiet=not args.verbose)
    except (FileNotFoundError, RuntimeError) as e:
        print(f"regfast: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
