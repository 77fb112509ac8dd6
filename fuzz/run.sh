#!/usr/bin/env bash
# fuzz/run.sh SECONDS [libFuzzer options...]
#
# Builds fuzz_regf with clang (libFuzzer + ASan + UBSan), writes the seed
# corpus with the hive writer, and fuzzes for SECONDS. Exits non-zero when the
# fuzzer finds a crash, a leak, a timeout or a broken API promise; the input
# that triggered it is left in $FUZZ_WORK/artifacts/ (reproduce with
# `$FUZZ_WORK/build/fuzz/fuzz_regf <file>`).
#
# Environment: FUZZ_WORK (default build/fuzz under the repository),
# PYTHON (default python3), CC (default clang), JOBS (parallel fuzzing
# processes, default 1). The corpus grown in $FUZZ_WORK/corpus is kept
# between runs.
set -euo pipefail

secs=${1:?usage: fuzz/run.sh SECONDS [libFuzzer options...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
work=${FUZZ_WORK:-$root/build/fuzz}
python=${PYTHON:-python3}
jobs=${JOBS:-1}

mkdir -p "$work"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
CC=${CC:-clang} cmake -S "$root" -B "$work/build" "${generator[@]}" \
    -DREGFAST_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/build" --target fuzz_regf -j "$(nproc 2>/dev/null || echo 2)"
fuzzer="$work/build/fuzz/fuzz_regf"

rm -rf "$work/artifacts" "$work"/fuzz-*.log   # a run reports only its own findings
mkdir -p "$work/corpus" "$work/artifacts"
rm -rf "$work/seeds"
"$python" "$here/make_corpus.py" "$work/seeds"

opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2560 -max_len=40000
      -print_final_stats=1 -artifact_prefix="$work/artifacts/")
if [ "$jobs" -gt 1 ]; then
    opts+=(-jobs="$jobs" -workers="$jobs")
fi

echo "fuzzing for ${secs}s: $fuzzer"
status=0
( cd "$work" && "$fuzzer" "${opts[@]}" "$@" "$work/corpus" "$work/seeds" ) || status=$?
if [ "$jobs" -gt 1 ]; then
    # with -jobs each process logs to fuzz-N.log in $work; a crash shows there
    if grep -l "ERROR: \|broken promise\|deadly signal\|Timeout\|out-of-memory" "$work"/fuzz-*.log 2>/dev/null; then
        status=1
    fi
fi
crashes=$(find "$work/artifacts" -type f | wc -l)
if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    echo "fuzz_regf FAILED (exit $status); reproducers:" >&2
    find "$work/artifacts" -type f >&2
    exit 1
fi
echo "fuzz_regf: no crash in ${secs}s"
