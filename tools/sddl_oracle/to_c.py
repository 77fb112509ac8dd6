#!/usr/bin/env python3
"""Turns sddl_oracle.exe output (TSV on stdin) plus inputs.txt into the C
vector table of tests/c/test_sddl.c (printed on stdout)."""
import sys

def c_str(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'

overrides = {}
with open(sys.argv[1] if len(sys.argv) > 1 else "inputs.txt") as f:
    for line in f:
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) >= 2:
            overrides[cols[0]] = (cols[1], cols[2] if len(cols) > 2 else "")

for line in sys.stdin:
    inp, hexs, wine = line.rstrip("\r\n").split("\t")  # Wine writes CRLF
    exp, why = overrides.get(inp, (wine, ""))
    print("    /* in:   %s */" % inp)
    if why:
        print("    /* wine: %s -- %s */" % (wine, why))
    # split long hex strings so the table stays readable
    chunks = [hexs[i:i + 96] for i in range(0, len(hexs), 96)]
    print("    { " + "\n      ".join(c_str(c) for c in chunks) + ",")
    if exp == "!INVALID":
        print("      NULL },")
    else:
        print("      " + c_str(exp) + " },")
