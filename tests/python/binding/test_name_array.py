"""Key.read_values(names) encodes the names for rf_read_values in one C block
(_bulk._NameArray): every str kind (Latin-1, BMP, astral, lone surrogates)
must reach C as the UTF-16 the "surrogatepass" codec would give."""
from __future__ import annotations

import regfast


def test_names_of_every_kind_are_found(make_hive):
    names = ["plain", "Ärger", "Ωmega", "\U00010000x", "a\U0001F600b\U00010FFFc", "lone\ud800", "", "ß" * 300]
    tree = {n: f"v{i}" for i, n in enumerate(names)}
    built = make_hive(tree)
    with regfast.open_hive(built.path) as hive:
        b = hive.root.read_values(names + ["\U00010001", "missing"])
        assert b.status.tolist() == [0] * len(names) + [2, 2]
        assert b.values()[: len(names)] == [f"v{i}" for i in range(len(names))]
        assert b.names[:3] == names[:3]
