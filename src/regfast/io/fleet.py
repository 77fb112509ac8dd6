"""Many hives, one table: :func:`scan_many` and ``regfast scan-many`` (:mod:`regfast.cli.fleet`).

::

    import regfast
    rows = regfast.scan_many(glob.glob("/cases/*/config/SYSTEM"), workers=8)
    table = rows.to_table()                        # pyarrow.Table, regfast.arrow.SCHEMA
    for batch in regfast.scan_many(paths):         # or stream the record batches
        ...

    $ regfast scan-many /cases -o out/ --format parquet --workers 8
    $ duckdb -c "SELECT source, key_path, value_name, data_str
                 FROM read_parquet('out/*/*.parquet')
                 WHERE key_path ILIKE '%\\CurrentVersion\\Run'"

Worker processes share nothing but paths: each one gets a hive's path, opens
(maps) the hive itself, scans it and turns the columns into Arrow record
batches. For ``regfast scan-many`` it writes them to the hive's Parquet file
and the parent only learns the path; for :func:`scan_many` it writes one
Arrow IPC stream to a spool file, which the parent maps (or reads) and
removes; with ``workers=0`` the batches go straight from the scan
to the caller. A hive that cannot be
read becomes one *error row* (``status`` = its Win32 code, ``error`` = why,
``key_path`` null), never a missing batch: open failures, a hive that fails
half-way (the rows read so far are kept, then the error row), even a worker
process that dies (the hives it held are retried one at a time in a fresh
process; one that kills it again gets an error row).

Batches come in the order hives finish, not the order given.
"""

from __future__ import annotations

import concurrent.futures as cf
import errno
import glob as _glob
import hashlib
import multiprocessing as mp
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regfast._types import _as_int
from regfast.exceptions import (
    ERROR_IO_DEVICE,
    ERROR_NO_SYSTEM_RESOURCES,
    RF_E_IO,
    RF_E_LIMIT,
    RegistryCorruptError,
    RegistryError,
)
from regfast.hive.forensics import detect_hive_type
from regfast.hive.logs import open_with_logs

__all__ = ["scan_many", "ScanMany", "HiveResult", "hive_batches", "expand_paths", "write_parquet_dataset"]

ERRORS = ("skip", "tolerant", "strict")
#: what scan_many takes: one path (a file, a directory, a glob) or many files
PathSpec = str | bytes | os.PathLike[str] | os.PathLike[bytes] | Iterable[str | bytes | os.PathLike[str]]
_LOG_SUFFIX = re.compile(r"\.log[12]?$", re.IGNORECASE)  # the logs recover() reads


@dataclass
class HiveResult:
    """What happened to one hive (ScanMany.hives, the CLI's summary)."""

    source: str
    rows: int = 0
    status: int = 0  # 0, or the Win32 code of the error row
    error: str | None = None
    hive_type: str | None = None
    tolerant: bool = False
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    output: str | None = None  # the file its rows were written to (spool or Parquet)


# ---------------------------------------------------------------------------
# one hive (runs in a worker process, or in this one with workers=0)
# ---------------------------------------------------------------------------


def _win32_of(e: BaseException) -> int:
    """The Win32 code an error row carries."""
    if isinstance(e, RegistryError):
        if e.winerror:
            return int(e.winerror)
        # (every RegistryError regfast makes has one; a caller's own may not)
        return {RF_E_IO: ERROR_IO_DEVICE, RF_E_LIMIT: ERROR_NO_SYSTEM_RESOURCES}.get(e.status, 1015)
    if isinstance(e, FileNotFoundError):
        return 2
    if isinstance(e, PermissionError):
        return 5
    if isinstance(e, IsADirectoryError):
        return 5  # as CreateFile on a directory
    if isinstance(e, MemoryError):
        return 8
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return 112  # ERROR_DISK_FULL: no room for the hive's output
    if isinstance(e, OSError):
        return 1117  # ERROR_IO_DEVICE: reading the file failed
    return 31  # ERROR_GEN_FAILURE: not a registry error (a bug: the text says)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError):
        return f"{type(e).__name__}: {e}"
    tb = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    where = f" at {tb[0].filename}:{tb[0].lineno}" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


#: the columns a Parquet file dictionary-encodes: those whose values repeat.
#: Trying it on every column (pyarrow's default) and giving up on the data
#: columns, whose values rarely repeat, took a third of the write's time
#: for the same file size (zstd compresses what repeats there).
PARQUET_DICTIONARY = ("source", "hive_type", "key_path", "value_name", "value_type")
#: hives per worker task: up to this many bytes of hive files, this many hives
CHUNK_BYTES = 16 << 20
CHUNK_HIVES = 64


class _Sink:
    """Where a worker puts a hive's batches: its file, written as they come.
    "parquet": the hive's file in the dataset. "ipc": an Arrow IPC stream
    (dictionaries may change from batch to batch) in the spool directory,
    which the caller maps or reads (_read_ipc). Results that came back through the
    pool's pipe instead cost the caller as much CPU as a worker spent
    scanning: every byte copied out of the pipe, into a growing buffer and
    out of the pickle, into fresh pages, on the one thread that gathers
    every worker's results."""

    def __init__(self, path: str, fmt: str) -> None:
        import pyarrow as pa

        from regfast.arrow import SCHEMA

        self.path, self.tmp, self.fmt = path, path + ".part", fmt
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self.writer: Any = pq.ParquetWriter(
                self.tmp, SCHEMA, compression="zstd", use_dictionary=list(PARQUET_DICTIONARY)
            )
        else:
            self.file = pa.OSFile(self.tmp, "wb")
            self.writer = pa.ipc.new_stream(self.file, SCHEMA)
        self.rows = 0

    def write(self, batch: Any) -> None:
        self.writer.write_batch(batch)
        self.rows += batch.num_rows

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            if self.fmt == "ipc":
                self.file.close()
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)

    def close(self, res: HiveResult) -> None:
        self.writer.close()
        if self.fmt == "ipc":
            self.file.close()
        os.replace(self.tmp, self.path)  # readers never see half a file
        res.output = self.path


def _open(source: str, res: HiveResult, opts: dict[str, Any]) -> Any:
    """Opens a hive as scan_many's `errors` says; its warnings (a dirty hive
    read without logs...) go to res.warnings. With opts["copy"] (a scan in
    the caller's process: workers=0, dask), the file is read into memory,
    not mapped: the Arrow conversion reads the mapping outside the C core's
    SIGBUS guard, so a hive cut short meanwhile (a file still being copied
    in) would end the caller's process; a worker's death is retried."""
    copy = bool(opts.get("copy"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hive = open_with_logs(source, opts["logs"], errors="strict", copy=copy)
            try:
                # a strict open checks hbins on first use: damaged ones are
                # found here (the scan would check them all anyway), so a
                # damaged hive is read tolerantly as a whole
                hive.validate()
            except BaseException:
                hive.close()
                raise
        except RegistryCorruptError:
            if opts["errors"] != "tolerant":
                raise
            hive = open_with_logs(source, opts["logs"], errors="tolerant", copy=copy)
            res.tolerant = True
            res.warnings += [
                f"tolerant open skipped {p.kind} damage at 0x{p.offset:x}: {p.reason}" for p in hive.problems
            ]
        except OSError as e:
            if e.errno == errno.EISDIR:
                # a directory expand_paths could not list: its own error
                # (permission denied...), not "is a directory"
                os.listdir(source)
            raise
    res.warnings += [f"{w.category.__name__}: {w.message}" for w in caught]
    return hive


def hive_batches(source: str, opts: dict[str, Any], res: HiveResult | None = None) -> Iterator[Any]:
    """The rows of one hive as record batches of regfast.arrow.SCHEMA; a
    failure ends them with the hive's error row (with errors="strict" it
    raises instead). `res`, when given, is filled in as it goes. `opts`:
    see _opts()."""
    from regfast.arrow import error_batch, table_batches

    res = res if res is not None else HiveResult(source=source)
    try:
        with _open(source, res, opts) as hive:
            res.hive_type = detect_hive_type(hive).name
            table = hive.scan(
                errors="strict" if opts["errors"] == "strict" else "skip",
                include_deleted=opts["include_deleted"],
            )
            for batch in table_batches(
                table,
                source=source,
                hive_type=res.hive_type,
                tolerant=res.tolerant,
                decode=opts["decode"],
                batch_rows=opts["batch_rows"],
            ):
                res.rows += batch.num_rows
                yield batch
    except Exception as e:
        if opts["errors"] == "strict":
            if isinstance(e, OSError) and e.filename is None:
                e.filename = source  # which of many hives failed (a damaged hbin names none)
            raise
        res.status, res.error = _win32_of(e), _describe(e)
        res.rows += 1
        yield error_batch(source, res.status, res.error, hive_type=res.hive_type, tolerant=res.tolerant)


def _scan_one(source: str, out: str, fmt: str, opts: dict[str, Any]) -> HiveResult:
    """Reads one hive into the file `out` (a worker's task)."""
    t0 = time.perf_counter()
    # fault injection for the test suite (only through ScanMany's opts): a
    # worker reading such a path dies the way a crash in a parser would
    crash = opts.get("crash_on")
    if crash and crash in source:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
    res = HiveResult(source=source, output=out)
    try:
        sink = _Sink(out, fmt)
        try:
            for batch in hive_batches(source, opts, res):
                sink.write(batch)
        except BaseException:
            sink.abort()
            raise
        sink.close(res)
    except (OSError, MemoryError) as e:
        # Writing the output failed (a full disk, pyarrow out of memory:
        # ArrowMemoryError is a MemoryError): hive_batches turns a hive's own
        # failures into its error row, so one here is the output's; raised
        # from a worker, it ended the whole run. The hive's result says so and has no output: scan_many
        # makes its error row in the caller, the Parquet writer's summary
        # lists it. errors="strict" raises it.
        if opts["errors"] == "strict":
            raise
        res.output = None
        res.status, res.error = _win32_of(e), f"writing this hive's rows failed: {_describe(e)}"
        res.rows = 1 if fmt == "ipc" else 0  # (a Parquet dataset has no room for its error row)
    res.seconds = time.perf_counter() - t0
    return res


def _scan_chunk(items: list[tuple[str, str]], fmt: str, opts: dict[str, Any]) -> list[HiveResult]:
    """A worker's task: several (hive, output) pairs, one after the other."""
    return [_scan_one(src, out, fmt, opts) for src, out in items]


def _died_batch(source: str, how: str) -> HiveResult:
    return HiveResult(
        source=source,
        status=1067,  # ERROR_PROCESS_ABORTED
        error=f"the worker process reading this hive died ({how}); retried alone, it died again",
    )


# ---------------------------------------------------------------------------
# many hives
# ---------------------------------------------------------------------------


def expand_paths(spec: PathSpec, *, left_out: list[str] | None = None) -> list[str]:
    """Hive paths from a directory (walked recursively: files that start with
    ``regf``; a transaction log ``X.LOG``/``.LOG1``/``.LOG2`` beside its hive
    ``X`` left out, as it is read with its hive), a glob pattern (every
    match, as given), a file (as given, even if its name looks like a
    pattern: ``case [2023]/SYSTEM``), or an iterable of paths (as given).

    `left_out`, when given, receives the directory's other entries, so a
    caller can say what it did not scan: files without the ``regf``
    signature (a hive whose base block lost its signature is among them:
    pass it by name to get its error row), transaction logs whose hive is
    not beside them, entries that are no regular file (a FIFO, a device, a
    dangling link: opening a FIFO would wait for a writer), and links to
    directories, which are not followed (a link back up would loop). A file
    named like a log whose base block says "primary file" is a hive, and is
    scanned. A directory that cannot be listed (no permission) is returned
    as an entry of its own, so that the scan gives it an error row saying
    why. Paths may be bytes (os.fsdecode'd)."""
    if not isinstance(spec, (str, bytes, os.PathLike)):
        return [os.fsdecode(os.fspath(p)) for p in spec]
    s = os.fsdecode(os.fspath(spec))
    if os.path.isdir(s):
        out: list[str] = []

        def unlisted(e: OSError) -> None:
            # a directory that cannot be listed may hold hives: it is
            # scanned as an entry of its own, whose error row says why
            # (_open lists it again), never dropped unsaid
            if e.filename is not None:
                out.append(os.fsdecode(e.filename))

        for root, dirs, files in os.walk(s, onerror=unlisted):
            dirs.sort()
            if left_out is not None:
                left_out.extend(os.path.join(root, d) for d in dirs if os.path.islink(os.path.join(root, d)))
            present = {f.lower() for f in files}
            for name in sorted(files):
                p = os.path.join(root, name)
                if _LOG_SUFFIX.search(name) and os.path.isfile(p) and _regf_file_type(p) != 0:
                    # a log: read with its hive when that is here (names
                    # compare as Windows does, without case); else said
                    if _LOG_SUFFIX.sub("", name).lower() not in present and left_out is not None:
                        left_out.append(p)
                    continue
                if not os.path.isfile(p):
                    if left_out is not None:
                        left_out.append(p)
                    continue
                try:
                    with open(p, "rb") as f:
                        if f.read(4) != b"regf":
                            if left_out is not None:
                                left_out.append(p)
                            continue
                except OSError:
                    pass  # unreadable: let the scan report it as an error row
                out.append(p)
        return out
    if _glob.has_magic(s) and not os.path.lexists(s):
        return sorted(p for p in _glob.glob(s, recursive=True) if not os.path.isdir(p))
    return [s]


def _regf_file_type(path: str) -> int | None:
    """The base block's file type (0 primary, 1 and 2 old-format logs, 6 a
    new-format log), or None: no regf signature, or unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError:
        return None
    if len(head) < 32 or head[:4] != b"regf":
        return None
    return int.from_bytes(head[28:32], "little")


def _mp_context() -> Any:
    # forkserver: workers start from a clean process (no fork of this one's
    # threads: pyarrow's pools, tqdm's monitor); spawn where there is none
    methods = mp.get_all_start_methods()
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


class _Progress:
    """A tqdm bar over the bytes of the hives (hives vary from 8 KB to GBs),
    a callable(done, total) of the caller, or nothing."""

    def __init__(self, progress: Any, total_bytes: int, n: int) -> None:
        self.bar: Any = None
        self.fn: Callable[[int, int], Any] | None = None
        self.n, self.done, self.errors = n, 0, 0
        if callable(progress):
            self.fn = progress
            return
        if progress is None:
            progress = sys.stderr.isatty()
            if progress:
                try:
                    import tqdm
                except ImportError:
                    progress = False
        if progress:
            try:
                from tqdm.auto import tqdm
            except ImportError as e:
                raise ImportError("progress=True needs tqdm (pip install 'regfast[fleet]')") from e
            self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="hives", smoothing=0.1)

    def update(self, nbytes: int, res: HiveResult) -> None:
        self.done += 1
        self.errors += res.error is not None
        if self.fn is not None:
            self.fn(self.done, self.n)
        if self.bar is not None:
            self.bar.set_postfix(hives=f"{self.done}/{self.n}", errors=self.errors, refresh=False)
            self.bar.update(nbytes)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _size(p: str) -> int:
    try:
        return os.stat(p).st_size
    except OSError:
        return 0


class ScanMany:
    """The result of :func:`scan_many`: iterate for ``pyarrow.RecordBatch``
    (:data:`regfast.arrow.SCHEMA`), or :meth:`to_table`. Runs once.
    ``hives`` lists a :class:`HiveResult` per hive as they finish;
    ``left_out`` the entries of a directory given that were not scanned (no
    ``regf`` signature, no regular file, a link to a directory: see
    :func:`expand_paths`)."""

    def __init__(
        self,
        paths: list[str],
        opts: dict[str, Any],
        workers: int,
        progress: Any,
        outputs: Callable[[int, str], str] | None = None,
        fmt: str = "ipc",
    ) -> None:
        self.paths, self.opts, self.workers, self.progress = paths, opts, workers, progress
        self.hives: list[HiveResult] = []
        self.left_out: list[str] = []
        self._outputs, self._fmt = outputs, fmt
        self._started = False
        self._retried: set[int] = set()  # hives in flight when a worker died once

    @property
    def schema(self) -> Any:
        from regfast.arrow import SCHEMA

        return SCHEMA

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Any]:
        if self._started:
            raise RuntimeError("a scan_many result can be iterated once")
        self._started = True
        if self.workers == 0 and self._fmt == "ipc":
            yield from self._in_process()
            return
        spool = None
        if self._outputs is None:
            spool = tempfile.mkdtemp(prefix="regfast-scan-many-")
            self._outputs = lambda i, src: os.path.join(spool, f"{i:08d}.arrows")
        try:
            for res in self._run():
                self.hives.append(res)
                if self._fmt == "ipc":
                    yield from _read_ipc(res)
        finally:
            if spool is not None:
                shutil.rmtree(spool, ignore_errors=True)

    def _in_process(self) -> Iterator[Any]:
        """workers=0: each hive's batches as hive_batches makes them, with no
        Arrow IPC stream written and read back (a worker's results must
        leave its process; these need not: the round trip was a quarter to a
        half of a small hive's time). A hive's batches are all made before
        the first is yielded, as a worker's are, so with errors="strict" a
        failure raises before any row of that hive is seen."""
        batches: list[Any] = []
        opts = dict(self.opts, copy=True)  # (no mapping a truncation could fault: see _open)

        def one(i: int, path: str) -> HiveResult:
            t0 = time.perf_counter()
            res = HiveResult(source=path)
            batches[:] = hive_batches(path, opts, res)
            res.seconds = time.perf_counter() - t0
            return res

        for res in self._run(one):
            self.hives.append(res)
            yield from batches
        batches.clear()

    def run(self) -> list[HiveResult]:
        """Runs without reading the batches back (the Parquet writer's mode)."""
        if self._outputs is None:  # before _started: the result can still be iterated
            raise RuntimeError(
                "run() writes each hive's rows to its output file (write_parquet_dataset); "
                "iterate a scan_many() result or call its to_table()"
            )
        if self._started:
            raise RuntimeError("a scan_many result can be run once")
        self._started = True
        for res in self._run():
            self.hives.append(res)
        return self.hives

    def to_table(self) -> Any:
        """Every row as one pyarrow.Table. Its dictionary columns (source,
        hive_type, key_path, value_type) share one dictionary per column
        across the batches (``unify_dictionaries``: a key path seen in many
        hives is stored once), which Arrow's group_by and joins need."""
        import pyarrow as pa

        from regfast.arrow import SCHEMA

        return pa.Table.from_batches(list(self), schema=SCHEMA).unify_dictionaries()

    # --- the pool ---------------------------------------------------------

    def _run(self, local: Callable[[int, str], HiveResult] | None = None) -> Iterator[HiveResult]:
        """Each hive's result as it finishes. workers=0: in this process,
        by `local` (hive number, path) when given, else _scan_one into its
        output."""
        sizes = [_size(p) for p in self.paths]
        prog = _Progress(self.progress, sum(sizes), len(self.paths))
        try:
            if self.workers == 0:
                one = local or self._scan_to_output
                for i, p in enumerate(self.paths):
                    res = one(i, p)
                    prog.update(sizes[i], res)
                    yield res
                return
            assert self._outputs is not None
            yield from self._pool(self._outputs, sizes, prog)
        finally:
            prog.close()

    def _scan_to_output(self, i: int, path: str) -> HiveResult:
        """Hive i read in this process into its output file (as a worker
        would), from a copy: no mapping a truncation could fault (see _open)."""
        assert self._outputs is not None
        return _scan_one(path, self._outputs(i, path), self._fmt, dict(self.opts, copy=True))

    def _chunks(self, sizes: list[int]) -> deque[list[int]]:
        """Hives grouped into tasks of up to CHUNK_BYTES (one task per big
        hive): a task per small hive would cost more in round trips through
        the pool than its scan. The last tasks are small, so that the
        workers finish together."""
        n = len(sizes)
        target = max(1, min(CHUNK_BYTES, sum(sizes) // max(1, 4 * self.workers)))
        out: deque[list[int]] = deque()
        cur: list[int] = []
        acc = 0
        for i in range(n):
            if cur and (acc + sizes[i] > target or len(cur) >= CHUNK_HIVES):
                out.append(cur)
                cur, acc = [], 0
            cur.append(i)
            acc += sizes[i]
        if cur:
            out.append(cur)
        return out

    def _pool(
        self, outputs: Callable[[int, str], str], sizes: list[int], prog: _Progress
    ) -> Iterator[HiveResult]:
        todo = self._chunks(sizes)
        suspects: deque[int] = deque()  # in flight when a worker died: retried one at a time
        ex = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=_mp_context())
        pending: dict[cf.Future[list[HiveResult]], list[int]] = {}
        depth = 2 * self.workers  # tasks in flight: enough to keep every worker busy

        def submit(chunk: list[int]) -> bool:
            """False when the pool broke since the last wait (a worker died
            while the caller held the generator): the chunk was not sent."""
            items = [(self.paths[i], outputs(i, self.paths[i])) for i in chunk]
            try:
                pending[ex.submit(_scan_chunk, items, self._fmt, self.opts)] = chunk
            except cf.process.BrokenProcessPool:
                return False
            return True

        try:
            while todo or suspects or pending:
                broken = False
                if suspects:
                    # alone in a fresh pool, so a second death names its hive
                    if not pending:
                        if submit([suspects[0]]):
                            suspects.popleft()
                        else:
                            broken = True
                else:
                    while todo and len(pending) < depth:
                        if not submit(todo[0]):
                            broken = True
                            break
                        todo.popleft()
                lost: list[int] = []
                if pending:
                    done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for f in done:
                        chunk = pending.pop(f)
                        try:
                            results = f.result()
                        except cf.process.BrokenProcessPool:
                            lost += chunk
                            broken = True
                            continue
                        for i, res in zip(chunk, results, strict=True):
                            prog.update(sizes[i], res)
                            yield res
                if broken:
                    # every other task in flight went down with the pool too
                    for chunk in pending.values():
                        lost += chunk
                    pending.clear()
                    for i in lost:
                        if i in self._retried:
                            res = self._died(i, outputs)
                            prog.update(sizes[i], res)
                            yield res
                        else:
                            self._retried.add(i)
                            suspects.append(i)
                    ex.shutdown(wait=True, cancel_futures=True)
                    ex = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=_mp_context())
        finally:
            for f in pending:
                f.cancel()
            ex.shutdown(wait=True, cancel_futures=True)

    def _died(self, i: int, outputs: Callable[[int, str], str]) -> HiveResult:
        """The result of a hive whose worker died twice: its error row is
        made by _read_ipc (scan_many), or written to its Parquet file."""
        from regfast.arrow import error_batch

        src = self.paths[i]
        res = _died_batch(src, "killed or crashed")
        res.rows = 1
        if self._fmt == "ipc":
            return res
        sink = _Sink(outputs(i, src), self._fmt)
        sink.write(error_batch(src, res.status, res.error or ""))
        sink.close(res)
        return res


#: spool files one process maps over its life (_read_ipc); past that it
#: reads them. Each mapping is a region of its own until no batch holds it,
#: and a process may hold ~65k (Linux's vm.max_map_count): a table of more
#: hives than that, kept whole, would hit the limit.
MAX_SPOOL_MAPS = 8192
_maps_made = 0
_maps_lock = threading.Lock()


def _may_map() -> bool:
    """One more spool file may be mapped (counted: mappings are never
    known to be released, so the count only grows)."""
    global _maps_made
    with _maps_lock:
        if os.name == "nt" or _maps_made >= MAX_SPOOL_MAPS:
            return False
        _maps_made += 1
        return True


def _read_ipc(res: HiveResult) -> Iterator[Any]:
    """The batches of a hive from its spool file, which is then removed.
    Mapped (POSIX, up to MAX_SPOOL_MAPS a process), not read: the batches
    point into the page cache, with no copy and no fresh pages to zero
    (reading it into a new buffer cost the caller 3.5x the CPU, and 14x
    through pyarrow's allocator); an unlinked file's pages live as long as
    a batch holds them. Windows cannot remove a mapped file: it reads. A
    hive with no output (its worker died, or its output could not be
    written) gets its error row here."""
    import pyarrow as pa

    from regfast.arrow import error_batch

    if res.output is None:
        if res.status:
            yield error_batch(
                res.source, res.status, res.error or "", hive_type=res.hive_type, tolerant=res.tolerant
            )
        return
    path, res.output = res.output, None
    if _may_map():
        with pa.memory_map(path) as m:
            batches = list(pa.ipc.open_stream(m))
    else:
        with open(path, "rb") as f:
            data = f.read()
        batches = list(pa.ipc.open_stream(pa.py_buffer(data)))
    os.unlink(path)
    yield from batches


def _opts(
    decode: bool = True,
    errors: str = "skip",
    include_deleted: bool = False,
    logs: Any = "auto",
    batch_rows: int = 65_536,
) -> dict[str, Any]:
    if errors not in ERRORS:
        raise ValueError(f"errors must be one of {', '.join(map(repr, ERRORS))}, got {errors!r}")
    if isinstance(logs, str) and logs != "auto":
        raise ValueError("logs must be 'auto' or None for scan_many")
    batch_rows = _as_int(batch_rows, "batch_rows")
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    return {
        "decode": bool(decode),
        "errors": errors,
        "include_deleted": bool(include_deleted),
        "logs": logs,
        "batch_rows": int(batch_rows),
    }


def _workers(workers: int | None, n: int) -> int:
    if workers is None:
        return max(1, min(os.cpu_count() or 1, n))
    workers = _as_int(workers, "workers")
    if workers < 0:
        raise ValueError("workers must be >= 0 (0: in this process)")
    return workers


def scan_many(
    paths: PathSpec,
    *,
    decode: bool = True,
    errors: str = "skip",
    workers: int | None = None,
    progress: Any = None,
    include_deleted: bool = False,
    logs: str | None = "auto",
    batch_rows: int = 65_536,
) -> ScanMany:
    """Scans many hives into one Arrow table (needs pyarrow: the ``arrow`` extra).

    Parameters
    ----------
    paths
        Hive files; or one directory (walked for regf files, logs left out) or
        glob pattern (see :func:`expand_paths`).
    decode
        Typed data columns (data_str / data_int / data_multi / data_bin);
        False: every value's raw bytes in data_bin only.
    errors
        ``"skip"`` (default): a hive that cannot be read becomes an error row,
        damaged keys and values rows with a status (``hive.scan(errors="skip")``);
        ``"tolerant"``: the same, and a hive whose base block or hbins are
        damaged is read again with ``open_hive(errors="tolerant")`` (its rows
        have ``tolerant`` True); ``"strict"``: the first failure raises.
    workers
        Worker processes (default: one per CPU, at most one per hive); 0 reads
        in this process.
    progress
        None (default): a tqdm bar when stderr is a terminal and tqdm is
        installed; True / False; or a callable(done, total) called per hive.
    include_deleted
        Add deleted keys and values found in free cells (``deleted`` True).
    logs
        "auto": replay each hive's transaction logs when it is dirty (as
        open_hive); None: read the primary file as it is.
    batch_rows
        Rows per record batch at most.

    Returns
    -------
    ScanMany
        Iterate it for ``pyarrow.RecordBatch`` (in the order hives finish), or
        call ``.to_table()``; ``.hives`` then says what happened to each hive,
        ``.left_out`` which entries of a directory were not scanned.
    """
    import regfast.arrow  # noqa: F401  (pyarrow, an optional dependency: fail here, not in a worker)

    opts = _opts(decode, errors, include_deleted, logs, batch_rows)
    left_out: list[str] = []
    plist = expand_paths(paths, left_out=left_out)
    run = ScanMany(plist, opts, _workers(workers, len(plist)), progress)
    run.left_out = left_out
    return run


# ---------------------------------------------------------------------------
# Parquet dataset (regfast scan-many)
# ---------------------------------------------------------------------------


# "hive=" + a name + a "-N" that tells it from another: within NAME_MAX (255)
_PARTITION_NAME_MAX = 200


def _partition_names(paths: Sequence[str], base: str | None) -> list[str]:
    """One directory name per hive: ``hive=<path below base>``, characters
    other than letters, digits, ``.-_`` as ``_``; unique, ignoring case (two
    names that differ in case alone are one directory on Windows, macOS and
    SMB shares). A name longer than _PARTITION_NAME_MAX keeps its start and
    end around a hash of the path. A name already taken gets the first free ``-N``: every name
    handed out is taken, its suffixed ones included (``a b``, ``a_b`` and
    ``a_b-2`` once made two ``hive=a_b-2``, and one hive's rows replaced the
    other's)."""
    taken: set[str] = set()
    out = []
    for p in paths:
        rel = os.path.relpath(p, base) if base else os.path.basename(p)
        if rel.startswith(".."):
            rel = os.path.basename(p)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", rel.replace(os.sep, "__")).strip("_.") or "hive"
        if len(name) > _PARTITION_NAME_MAX:
            # a file name is at most 255 bytes (NAME_MAX, NTFS): a deep
            # path (a KAPE tree's settings.dat) failed the whole run before
            # any hive was read. Its start and end (the hive's file name)
            # stay, the middle becomes a hash of the whole path, so names
            # stay unique and the same on every run.
            digest = hashlib.sha1(rel.encode("utf-8", "surrogateescape")).hexdigest()[:12]
            keep = (_PARTITION_NAME_MAX - len(digest) - 2) // 2
            name = f"{name[:keep]}_{digest}_{name[-keep:]}"
        unique, n = name, 1
        while unique.lower() in taken:
            n += 1
            unique = f"{name}-{n}"
        taken.add(unique.lower())
        out.append(f"hive={unique}")
    return out


def write_parquet_dataset(
    paths: Sequence[str],
    out_dir: str | os.PathLike[str],
    *,
    base: str | None = None,
    workers: int | None = None,
    progress: Any = None,
    overwrite: bool = False,
    **kwargs: Any,
) -> list[HiveResult]:
    """Writes the rows of every hive as a Parquet dataset partitioned by hive:
    ``out_dir/hive=<name>/part-0.parquet`` (each written by the worker that
    read the hive, then renamed into place). kwargs: those of scan_many."""
    import pyarrow.parquet  # noqa: F401  (optional dependency: fail here, not in a worker)

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                17, f"{out} is not empty (use --overwrite to replace a previous scan)", str(out)
            )
        for child in out.iterdir():
            if child.name.startswith("hive=") and child.is_dir():
                shutil.rmtree(child)
    out.mkdir(parents=True, exist_ok=True)
    plist = list(paths)
    names = _partition_names(plist, base)
    for n in names:
        (out / n).mkdir(exist_ok=True)
    opts = _opts(
        kwargs.pop("decode", True),
        kwargs.pop("errors", "skip"),
        kwargs.pop("include_deleted", False),
        kwargs.pop("logs", "auto"),
        kwargs.pop("batch_rows", 65_536),
    )
    if kwargs:
        raise TypeError(f"unexpected arguments {sorted(kwargs)}")
    sm = ScanMany(
        plist,
        opts,
        _workers(workers, len(plist)),
        progress,
        outputs=lambda i, src: str(out / names[i] / "part-0.parquet"),
        fmt="parquet",
    )
    return sm.run()
