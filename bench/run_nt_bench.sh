#!/usr/bin/env bash
# Builds bench/nt_bench.c for Windows with mingw-w64 and runs it under Wine:
# the reference chapter's live-registry table, with regfast's nt backend.
#
#   bench/run_nt_bench.sh [BUILD_DIR]      (default: build/nt)
#
# Uses a private Wine prefix in BUILD_DIR/wineprefix (made on first use,
# ~10-60 s). Under Wine every registry call is a wineserver round trip, so
# the ratios count server calls; they say nothing about Windows speed
# (see bench/NT_RESULTS.md and shared/reference/wine-registry.md).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build/nt}
case $build in /*) ;; *) build=$here/$build ;; esac

for tool in x86_64-w64-mingw32-gcc wine wineboot wineserver cmake; do
  command -v "$tool" >/dev/null || { echo "run_nt_bench: $tool is missing" >&2; exit 2; }
done
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$build" "${gen[@]}" -DCMAKE_TOOLCHAIN_FILE="$here/cmake/mingw-w64-x86_64.cmake" \
        -DCMAKE_BUILD_TYPE=Release -DREGFAST_BUILD_BENCH=ON >/dev/null
else
  cmake -S "$here" -B "$build" -DREGFAST_BUILD_BENCH=ON >/dev/null
fi
cmake --build "$build" --target nt_bench >/dev/null

export WINEPREFIX=$build/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES=mscoree,mshtml=
[ -f "$WINEPREFIX/system.reg" ] || wineboot -i >/dev/null 2>&1
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
wine "$build/nt_bench.exe" 2> >(grep -v -e 'wine32' -e 'multiarch' -e 'dpkg --add' -e 'apt-get install' >&2)
wineserver -w
