#!/bin/sh
# Builds sddl_oracle.exe with mingw-w64 and runs it under Wine on inputs.txt,
# printing the C vector table for tests/c/test_sddl.c on stdout. Uses a
# throwaway WINEPREFIX unless one is set (the first run initialises it, which
# takes a few seconds). Needs x86_64-w64-mingw32-gcc, wine and python3.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/sddl_oracle.XXXXXX")
export WINEPREFIX="${WINEPREFIX:-$out/prefix}" WINEDEBUG=-all
cleanup() { wineserver -w 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT
x86_64-w64-mingw32-gcc -std=c11 -O2 -Wall -Wextra "$here/sddl_oracle.c" \
    -o "$out/sddl_oracle.exe" -ladvapi32
wine "$out/sddl_oracle.exe" < "$here/inputs.txt" > "$out/vectors.tsv"
wine --version >&2
python3 "$here/to_c.py" "$here/inputs.txt" < "$out/vectors.tsv"
