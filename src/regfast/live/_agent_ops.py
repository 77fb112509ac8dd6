"""regfast-agent's operations: GENERATED from src/agent/ag_ops.def by
tools/gen_agent_ops.py — do not edit (tests/python/live/test_agent_ops.py checks
that this file is what the generator writes)."""
from __future__ import annotations

# protocol versions (AG_PROTO): each a superset of the one before
V_SD_HASH = 2
V_TRAILER = 3
V_LAYOUTS = 4
V_LINKS = 5
VERSION_MIN = 2
VERSION_MAX = 5

# version -> what it adds
VERSIONS: dict[int, str] = {
    2: 'snapshots carry a security-descriptor hash per key (the oldest version served)',
    3: "every frame after HELLO's response, both ways, ends with a u32 CRC-32 (zlib's) of its payload; a mismatch is answered with 13 and the agent stops reading. Payloads as in 2",
    4: "framing as in 3; READ_VALUES column replies (flag 0x100), KEY_INFO's stored name, SET_SECURITY_SD, OPEN_KEY flag 2 (volatile)",
    5: "SUBKEYS' flags (1: hints) and each entry's flags (1: its node lists no subkeys, as a symbolic link's never does; 2: it lists some, so it is no link), KEY_IS_LINK",
}

OP_HELLO = 1
OP_PING = 2
OP_OPEN_KEY = 3
OP_CLOSE_KEY = 4
OP_KEY_INFO = 5
OP_SUBKEYS = 6
OP_GET_VALUE = 7
OP_READ_VALUES = 8
OP_SET_VALUE = 9
OP_DELETE_VALUE = 10
OP_DELETE_KEY = 11
OP_SNAPSHOT = 12
OP_WATCH = 13
OP_UNWATCH = 14
OP_BENCH = 15
OP_STATS = 16
OP_QUIT = 17
OP_RENAME = 32
OP_GET_SECURITY = 33
OP_SET_SECURITY = 34
OP_GRANT = 35
OP_TAKE_OWNERSHIP = 36
OP_PRIVILEGES = 37
OP_SET_PRIVILEGES = 38
OP_SAVE_KEY = 39
OP_LOAD_HIVE = 40
OP_UNLOAD_HIVE = 41
OP_RESTORE_KEY = 42
OP_REPLACE_KEY = 43
OP_LOAD_APP_HIVE = 44
OP_MUI_STRING = 45
OP_FILE_KIND = 46
OP_SNAPSHOT_RF = 47
OP_SET_SECURITY_SD = 48
OP_KEY_IS_LINK = 49
OP_TX_PROBE = 64
OP_TX_BEGIN = 65
OP_TX_COMMIT = 66
OP_TX_ROLLBACK = 67
OP_TX_OPEN_KEY = 68
OP_TX_SET_VALUE = 69
OP_TX_DELETE_VALUE = 70
OP_TX_DELETE_KEY = 71
OP_TX_GET_VALUE = 72
OP_TX_CLOSE_KEY = 73

# op -> name (regfast.observe.hooks.OP_NAMES)
NAMES: dict[int, str] = {
    1: 'hello',
    2: 'ping',
    3: 'open_key',
    4: 'close_key',
    5: 'key_info',
    6: 'subkeys',
    7: 'get_value',
    8: 'read_values',
    9: 'set_value',
    10: 'delete_value',
    11: 'delete_key',
    12: 'snapshot',
    13: 'watch',
    14: 'unwatch',
    15: 'bench',
    16: 'stats',
    17: 'quit',
    32: 'rename',
    33: 'get_security',
    34: 'set_security',
    35: 'grant',
    36: 'take_ownership',
    37: 'privileges',
    38: 'set_privileges',
    39: 'save_key',
    40: 'load_hive',
    41: 'unload_hive',
    42: 'restore_key',
    43: 'replace_key',
    44: 'load_app_hive',
    45: 'mui_string',
    46: 'file_kind',
    47: 'snapshot_rf',
    48: 'set_security_sd',
    49: 'key_is_link',
    64: 'tx_probe',
    65: 'tx_begin',
    66: 'tx_commit',
    67: 'tx_rollback',
    68: 'tx_open_key',
    69: 'tx_set_value',
    70: 'tx_delete_value',
    71: 'tx_delete_key',
    72: 'tx_get_value',
    73: 'tx_close_key',
}

# ops that change the registry (or the agent's token) whatever their arguments
WRITE_OPS: frozenset[int] = frozenset({
    9,
    10,
    11,
    32,
    34,
    35,
    36,
    38,
    40,
    41,
    42,
    43,
    48,
    69,
    70,
    71,
})

# op -> request / reply layout (ag_ops.def's grammar)
REQUEST: dict[int, str] = {
    1: 'magic:b4 min:u16 max:u16',
    2: 'data:raw',
    3: 'root:u32 view:u32 access:u32 flags:u32 path:s16',
    4: 'handle:u32',
    5: 'handle:u32',
    6: 'handle:u32 flags:u32@5',
    7: 'handle:u32 value:s16',
    8: 'handle:u32 flags:u32 n:u32 n*(value:s16) n_types:u32 n_types*(type:u32)',
    9: 'handle:u32 type:u32 value:s16 len:u32 data:raw',
    10: 'handle:u32 value:s16',
    11: 'handle:u32 flags:u32 subkey:s16',
    12: 'handle:u32 flags:u32 max_keys:u32',
    13: 'flags:u32 filter:u32 max_keys:u32 delay_ms:u32 n:u32 n*(handle:u32)',
    14: 'watch:u32',
    15: 'method:u32 handle:u32 reps:u32 n:u32 n*(value:s16)',
    16: '',
    17: '',
    32: 'handle:u32 new_name:s16',
    33: 'handle:u32 si:u32',
    34: 'handle:u32 sddl:s16',
    35: 'handle:u32 rights:u32 mode:u32 inherit:u32 trustee:s16',
    36: 'handle:u32',
    37: 'n:u32 n*(privilege:s16)',
    38: 'enable:u32 n:u32 n*(privilege:s16)',
    39: 'handle:u32 format:u32 file:s16',
    40: 'root:u32 subkey:s16 file:s16',
    41: 'root:u32 subkey:s16',
    42: 'handle:u32 flags:u32 file:s16',
    43: 'handle:u32 file:s16 old_file:s16',
    44: 'max_keys:u32 file:s16',
    45: 'handle:u32 value:s16',
    46: 'file:s16',
    47: 'handle:u32 max_keys:u32',
    48: 'handle:u32 si:u32 sd:raw',
    49: 'handle:u32 subkey:s16',
    64: '',
    65: 'timeout_ms:u32 description:s16',
    66: 'tx:u32',
    67: 'tx:u32',
    68: 'tx:u32 root:u32 view:u32 access:u32 flags:u32 path:s16',
    69: 'tkey:u32 type:u32 value:s16 len:u32 data:raw',
    70: 'tkey:u32 value:s16',
    71: 'tkey:u32 flags:u32 subkey:s16',
    72: 'tkey:u32 value:s16',
    73: 'tkey:u32',
}

REPLY: dict[int, str] = {
    1: 'version:u16 max_request:u32 max_response:u32 pid:u32 caps:u32 description:s8',
    2: 'data:raw',
    3: 'handle:u32 disposition:u32',
    4: '',
    5: 'last_write:u64 subkeys:u32 values:u32 max_name:u32 max_class:u32 max_value_name:u32 max_value_data:u32 flags:u32 class:s16 name:s16@4',
    6: 'n:u32 n*(last_write:u64 name:s16 flags:u32@5)',
    7: 'type:u32 len:u32 data:raw',
    8: 'rows:u32 arena_len:u32 rows*(type:u32 status:i32 length:u32 data_off:u32 name_off:u32 name_len:u32) arena:raw',
    9: '',
    10: '',
    11: '',
    12: 'snapshot:snap',
    13: 'watch:u32 threads:u32 n*(snapshot:snap)',
    14: '',
    15: 'elapsed_ns:u64 reads_ok:u64 multi_state:i32',
    16: 'handles_open:u32 watches:u32 frames:u64 bad_frames:u64',
    17: '',
    32: '',
    33: 'si:u32 sd_len:u32 sd:u8[sd_len] sddl:s8',
    34: 'si:u32',
    35: '',
    36: '',
    37: 'n*(status:i32 held:u32 enabled:u32)',
    38: 'n*(was_enabled:u32)',
    39: 'file_kind:u32',
    40: '',
    41: '',
    42: '',
    43: '',
    44: 'snapshot:snap',
    45: 'text:s16',
    46: 'kind:u32',
    47: 'snapshot:snap',
    48: '',
    49: 'link:u32',
    64: '',
    65: 'tx:u32',
    66: '',
    67: '',
    68: 'tkey:u32 disposition:u32',
    69: '',
    70: '',
    71: '',
    72: 'type:u32 len:u32 data:raw',
    73: '',
}

# ops whose request starts with a key handle (agent OPEN_KEY handle):
# what follows it (tools/gen_agent_ops.py hook_shape)
HANDLE_SHAPES: dict[int, str] = {
    4: '',
    5: '',
    6: 't',
    7: 's',
    8: 'tt',
    9: 'tst',
    10: 's',
    11: 'tk',
    12: 'tt',
    32: 'n',
    33: 't',
    34: 'x',
    35: 'tttx',
    36: '',
    39: 'tp',
    42: 'tp',
    43: 'px',
    45: 's',
    47: 't',
    48: 't',
    49: 'k',
}

# the same for transacted keys (TX_OPEN_KEY tkey)
TX_HANDLE_SHAPES: dict[int, str] = {
    69: 'tst',
    70: 's',
    71: 'tk',
    72: 's',
    73: '',
}
