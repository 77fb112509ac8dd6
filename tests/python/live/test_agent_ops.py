"""The op table is one file, src/agent/ag_ops.def: the C server and client
include it, and Python's op constants are generated from it. So is the list
of protocol versions (AG_PROTO). These tests keep the generated module,
regfast.live.protocol and regfast.observe.hooks in step with it."""
from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT
from regfast import hooks
from regfast.live import _agent_ops as ops
from regfast.live import protocol as A

sys.path.insert(0, str(ROOT / "tools"))
import gen_agent_ops  # noqa: E402


def test_generated_module_is_what_the_generator_writes():
    text = gen_agent_ops.generate((ROOT / "src/agent/ag_ops.def").read_text())
    assert (ROOT / "src/regfast/live/_agent_ops.py").read_text() == text, \
        "src/regfast/live/_agent_ops.py is stale: run python tools/gen_agent_ops.py"
    r = subprocess.run([sys.executable, str(ROOT / "tools/gen_agent_ops.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_agent_py_and_hooks_use_the_table():
    table = {n: v for n, v in vars(ops).items() if n.startswith("OP_")}
    assert len(table) == len(ops.NAMES) >= 44
    for name in (n for n in vars(A) if n.startswith("OP_")):   # the ops the protocol module uses
        assert getattr(A, name) == table[name], name
    # nothing else in the package writes an op number by hand (OP_OPEN_HIVE
    # is no agent op: the offline entry point regfast.observe.hooks sees)
    for path in (ROOT / "src" / "regfast").rglob("*.py"):
        if path.name != "_agent_ops.py":
            literal = re.findall(r"^\s*(OP_\w+)\s*=\s*(?:0x[0-9a-fA-F]+|\d+)\b", path.read_text(), re.M)
            assert set(literal) <= {"OP_OPEN_HIVE"}, (path, literal)
    assert {k: v for k, v in hooks.OP_NAMES.items() if k in ops.NAMES} == ops.NAMES
    assert hooks.WRITE_OPS == ops.WRITE_OPS
    assert ops.OP_SET_VALUE in hooks.WRITE_OPS and ops.OP_SAVE_KEY not in hooks.WRITE_OPS
    assert hooks._HANDLE_OPS[ops.OP_SET_VALUE] == "tst" and hooks._HANDLE_OPS[ops.OP_RENAME] == "n"
    assert hooks._TX_HANDLE_OPS[ops.OP_TX_DELETE_KEY] == "tk"
    assert ops.OP_WATCH not in hooks._HANDLE_OPS     # starts with flags, not a handle


def test_no_op_number_is_written_by_hand_in_c():
    """agent.h, the agent's .c files and src/remote take their numbers from
    the .def (AG_OP_<NAME> through the X-macro), never as literals."""
    for path in [*(ROOT / "src/agent").glob("*.[ch]"), *(ROOT / "src/remote").glob("*.[ch]")]:
        text = path.read_text()
        for m in re.finditer(r"AG_OP_[A-Z_]+\s*=\s*\d+", text):
            raise AssertionError(f"{path.name}: op number by hand: {m.group(0)}")


def test_versions_are_one_superset_chain():
    """2: the oldest served; 3: cli's CRC trailer with 2's payloads; 4: the
    trailer and the remote backend's layouts; 5: links. agent.py speaks up to 3 and
    frames by the generated numbers; the C side derives AG_VERSION_MIN /
    AG_VERSION / AG_V_* from the same list (ag_proto.h)."""
    assert list(ops.VERSIONS) == list(range(ops.VERSION_MIN, ops.VERSION_MAX + 1))
    assert (ops.V_SD_HASH, ops.V_TRAILER, ops.V_LAYOUTS, ops.V_LINKS) == (2, 3, 4, 5) == tuple(ops.VERSIONS)
    assert "CRC-32" in ops.VERSIONS[ops.V_TRAILER] and "Payloads as in 2" in ops.VERSIONS[ops.V_TRAILER]
    assert "READ_VALUES" in ops.VERSIONS[ops.V_LAYOUTS] and "framing as in 3" in ops.VERSIONS[ops.V_LAYOUTS]
    assert (A.MIN_VERSION, A.VERSION) == (ops.VERSION_MIN, ops.V_TRAILER)
    assert A.frame(ops.OP_PING, 1, b"x", version=ops.V_SD_HASH)[-1:] == b"x"
    assert len(A.frame(ops.OP_PING, 1, b"x", version=ops.V_TRAILER)) == A.HEADER + 1 + A.TRAILER
    proto = (ROOT / "src/agent/ag_proto.h").read_text()
    assert "#define AG_VERSION_MIN    AG_V_SD_HASH" in proto and "#define AG_VERSION        AG_V_LINKS" in proto
    # a field that needs a later version says so, and names a listed version
    assert ops.REPLY[ops.OP_KEY_INFO].endswith("name:s16@4")
    assert ops.REPLY[ops.OP_SUBKEYS].endswith("flags:u32@5)") and "link" in ops.VERSIONS[ops.V_LINKS]


def test_version_list_grammar_rejects_mistakes():
    import pytest
    ok = 'AG_PROTO(2, A, "x")\nAG_PROTO(3, B, "y" "z")\n'
    assert gen_agent_ops.parse_versions(ok) == [(2, "A", "x"), (3, "B", "yz")]
    with pytest.raises(ValueError):
        gen_agent_ops.parse_versions('AG_PROTO(2, A, "x")\nAG_PROTO(4, B, "y")\n')     # a gap
    with pytest.raises(ValueError):
        gen_agent_ops.parse_versions('AG_PROTO(2, A, x)\n')                            # not a string
    with pytest.raises(ValueError):
        gen_agent_ops.check_layout("a:u32@9", "x", versions={2, 3, 4})


def test_layout_grammar_rejects_mistakes():
    import pytest
    with pytest.raises(ValueError):
        gen_agent_ops.check_layout("n*(a:u32", "x")
    with pytest.raises(ValueError):
        gen_agent_ops.check_layout("m*(a:u32)", "x")
    with pytest.raises(ValueError):
        gen_agent_ops.check_layout("a:float", "x")
    assert gen_agent_ops.check_layout("n:u32 n*(a:s16) b:u8[n]", "x") == {"n", "a", "b"}
