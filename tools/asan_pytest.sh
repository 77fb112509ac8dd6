#!/usr/bin/env bash
# tools/asan_pytest.sh [pytest args...]
#
# Builds the extension with gcc's AddressSanitizer (-C
# cmake.define.REGFAST_SANITIZE=address) into a private directory and runs the
# pytest suite against it, with libasan preloaded into the (uninstrumented)
# Python interpreter. Exits non-zero on a test failure or on any ASan report.
#
#   tools/asan_pytest.sh                          # all of tests/python
#   tools/asan_pytest.sh tests/python/binding/test_corrupt.py -x
#
# Environment:
#   PYTHON         interpreter with pytest, hypothesis and numpy (default: python3)
#   REGFAST_SRC    source tree to build (default: this repository); the tree is
#                  copied first, so files being edited meanwhile cannot break the build
#   ASAN_OUT       where the build goes (default: a fresh temporary directory)
#   ASAN_REUSE=1   reuse an existing build in $ASAN_OUT
#
# Why these settings: CPython leaks by design at exit, so leak detection is off
# (detect_leaks=0). Python's small-object allocator would hide overruns inside
# its arenas: PYTHONMALLOC=malloc sends every object through malloc, so each
# str the Cython code writes in place (_bulk.pyx builds names and paths inside
# PyUnicode_New storage) and each small buffer handed to C gets redzones. Memory mapped with mmap
# (open_hive on a file) has no redzones: from_buffer() is the checked path.
# LD_PRELOAD is removed from the environment as soon as Python starts (a
# sitecustomize), so subprocesses (the hivex oracle, wine) run normally; it is
# kept in REGFAST_ASAN_PRELOAD for the Python children of isolated.py.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
src=${REGFAST_SRC:-$repo}
python=${PYTHON:-python3}
out=${ASAN_OUT:-$(mktemp -d /tmp/regfast-asan.XXXXXX)}

libasan=$(gcc -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
    echo "asan_pytest: gcc's libasan.so not found ($libasan)" >&2
    exit 2
fi

if [ "${ASAN_REUSE:-0}" != 1 ] || [ ! -d "$out/site/regfast" ]; then
    rm -rf "$out/src" "$out/site" "$out/build"
    mkdir -p "$out/src" "$out/site"
    # a snapshot of the tree: no build/ or .git, nothing half-edited mid-build
    (cd "$src" && tar --exclude=./build --exclude=./.git -cf - .) | tar -xf - -C "$out/src"
    echo "asan_pytest: building $src with -fsanitize=address into $out/site"
    CC=gcc "$python" -m pip install --quiet --no-deps --target "$out/site" \
        -C cmake.define.REGFAST_SANITIZE=address \
        -C cmake.build-type=RelWithDebInfo \
        -C build-dir="$out/build" \
        "$out/src" 2>&1 | grep -v "^WARNING: Location" || true
    if [ ! -d "$out/site/regfast" ]; then
        echo "asan_pytest: the build failed" >&2
        exit 2
    fi
fi
if ! nm -D "$out"/site/regfast/_native*.so 2>/dev/null | grep -q __asan_; then
    echo "asan_pytest: $out/site/regfast/_native*.so is not instrumented" >&2
    exit 2
fi

mkdir -p "$out/preload"
# Python worker processes (regfast.scan_many's pool, Dask's nannies) run the
# instrumented extension too: multiprocessing starts them through this
# wrapper, which preloads ASan into the same interpreter.
cat >"$out/preload/python-asan" <<EOF
#!/bin/sh
LD_PRELOAD="$libasan" exec "\$REGFAST_ASAN_PYTHON" "\$@"
EOF
chmod +x "$out/preload/python-asan"
cat >"$out/preload/sitecustomize.py" <<'EOF'
# asan_pytest.sh: ASan is loaded in this process; other programs started from
# here (the hivex oracle, wine) need not have it. Python children do: the
# instrumented extension needs it. sys.executable becomes the preloading
# wrapper (above), so every test, CLI run and multiprocessing worker that
# starts `sys.executable` gets ASan; isolated.py also finds the library in
# REGFAST_ASAN_PRELOAD.
import os
import sys
preload = os.environ.pop("LD_PRELOAD", None)
if preload:
    os.environ["REGFAST_ASAN_PRELOAD"] = preload
    os.environ.setdefault("REGFAST_ASAN_PYTHON", sys.executable)
    sys.executable = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python-asan")
    import multiprocessing
    multiprocessing.set_executable(sys.executable)
EOF

log="$out/pytest.log"
# pytest captures fd 2 and ASan ends the process before pytest can show it:
# reports go to files instead ($out/asan.<pid>), checked below.
rm -f "$out"/asan.*
export PYTHONPATH="$out/preload:$out/site${PYTHONPATH:+:$PYTHONPATH}"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:log_path=$out/asan:${ASAN_OPTIONS:-}"
export PYTHONFAULTHANDLER=1
export PYTHONMALLOC=malloc

# the instrumented build must be the one imported
where=$(LD_PRELOAD="$libasan" "$python" -c "import regfast._native as n; print(n.__file__)")
case "$where" in
    "$out/site/"*) ;;
    *) echo "asan_pytest: imported $where, not the ASan build in $out/site" >&2; exit 2 ;;
esac

if [ $# -eq 0 ]; then
    set -- "$repo/tests/python"
fi
echo "asan_pytest: running pytest $* (log: $log)"
set +e
(cd "$repo" && LD_PRELOAD="$libasan" "$python" -m pytest -p no:cacheprovider "$@") 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
reports=$(ls "$out"/asan.* 2>/dev/null || true)
if [ -n "$reports" ] || grep -q "ERROR: AddressSanitizer" "$log"; then
    for r in $reports; do cat "$r" >&2; done
    echo "asan_pytest: AddressSanitizer reported an error (reports: ${reports:-in $log})" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "asan_pytest: pytest failed (exit $status)" >&2
    exit "$status"
fi
echo "asan_pytest: clean"
