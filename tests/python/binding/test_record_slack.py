"""Key.slack(), Value.slack() and Hive.token_offset() on every real hive of
the corpus: the C calls (rf_key_slack, rf_value_slack, rf_hive_token_offset)
against this test's own reading of the raw cells (the nk name length at 0x48
and the name at 0x4C; the vk name length at 0x02, the data length at 0x04 and
the data cell at 0x08) and against the whole-hive slack listing
(rf_hive_slack), a separate walk in C.
"""
from __future__ import annotations

import warnings

import pytest

import regfast

from conftest import CORPUS_NOT_HIVES, corpus_names, corpus_path

REAL_HIVES = [n for n in corpus_names() if n not in CORPUS_NOT_HIVES]


def _u(b, at, n):
    return int.from_bytes(b[at:at + n], "little")


@pytest.mark.parametrize("name", REAL_HIVES)
def test_record_slack_on_real_hives(name):
    path = corpus_path(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", regfast.DirtyHiveWarning)
        hive = regfast.open_hive(path, errors="tolerant")
    with hive:
        try:
            listed = {s.cell: s for s in hive.slack(min_length=1)}
        except regfast.RegistryCorruptError:
            listed = None                  # a damaged hbin: the whole-hive pass refuses
        keys = values = with_slack = 0
        for key in hive.walk(errors="skip"):
            keys += 1
            at = hive.token_offset(key.offset)
            nk, allocated = hive.cell(at)
            assert allocated and bytes(nk[:2]) == b"nk"
            want = bytes(nk[0x4C + _u(nk, 0x48, 2):])
            assert bytes(key.slack()) == want, (key.path, hex(at))
            if want and listed is not None:
                assert listed[at].kind == "nk" and bytes(listed[at].data) == want
                with_slack += 1
            try:
                vals = key.values()
            except regfast.RegistryCorruptError:
                continue                   # a damaged value list (tolerant walk)
            for v in vals:
                values += 1
                vat = hive.token_offset(v.offset)
                vk, _ = hive.cell(vat)
                want_vk = bytes(vk[0x14 + _u(vk, 0x02, 2):])
                raw = _u(vk, 0x04, 4)
                try:
                    got_vk, got_data = v.slack()
                except regfast.RegistryCorruptError as e:
                    with pytest.raises(regfast.RegistryCorruptError):
                        v.raw()            # only values whose data cannot be read
                    assert e.offset is not None
                    continue
                assert bytes(got_vk) == want_vk, (key.path, v.name)
                want_data = b""
                if raw and not raw & 0x80000000:
                    cell, _ = hive.cell(hive.token_offset(_u(vk, 0x08, 4)))
                    big = raw > 16344 and bytes(cell[:2]) == b"db"          # big data: no data slack
                    want_data = b"" if big else bytes(cell[raw:])
                assert bytes(got_data) == want_data, (key.path, v.name)
                if listed is not None and want_vk and vat in listed:
                    assert bytes(listed[vat].data) == want_vk
    assert keys > 0 and values >= 0
    if listed is not None and with_slack:
        assert with_slack <= len(listed)


def test_record_slack_and_token_offset_refuse_bad_tokens(make_hive):
    built = make_hive({"K": {"v": "abc"}})
    with regfast.open_hive(built.path) as hive:
        key = hive.open("K")
        assert hive.token_offset(key.offset) == built.layout.nk["K"]
        with pytest.raises(OSError) as e:
            hive.token_offset(1 << 40)
        assert e.value.winerror == 6                                     # ERROR_INVALID_HANDLE



def test_token_offset_refuses_what_is_no_token(make_hive):
    built = make_hive({"K": {}})
    with regfast.open_hive(built.path) as hive:
        for bad in (-1, 2 ** 64):
            with pytest.raises(OSError) as e:
                hive.token_offset(bad)
            assert e.value.winerror == 87
