from typing import Any

import numpy as np
import numpy.typing as npt

INVALID_DATA: int
NOT_ENOUGH_MEMORY: int
MAX_ROW: int

# (offsets, the strings' bytes, which rows are valid)
_Strings = tuple[npt.NDArray[np.int32], npt.NDArray[np.uint8], npt.NDArray[np.bool_]]

KEY_NAME_AT: int
VALUE_NAME_AT: int

def names(mapping: Any, token: npt.NDArray[np.uint32], name_at: int, ln: npt.NDArray[np.uint32],
          rows: npt.NDArray[np.int64]) -> _Strings: ...
def key_paths(mapping: Any, parent: npt.NDArray[np.int32], deleted: npt.NDArray[np.uint8],
              token: npt.NDArray[np.uint32], name_len: npt.NDArray[np.uint32],
              root: bytes) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8],
                                    npt.NDArray[np.bool_], bool]: ...
def gather(offsets: npt.NDArray[np.int64], data: Any, valid: npt.NDArray[np.uint8],
           rows: npt.NDArray[np.int64]) -> _Strings: ...
def row_plan(value_key: npt.NDArray[np.int32], key_status: npt.NDArray[np.int32],
             n_keys: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None: ...
def filetime_us(ft: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]: ...
def row_columns(row_key: npt.NDArray[np.int64], row_val: npt.NDArray[np.int64],
                key_last_write: npt.NDArray[np.uint64], key_status: npt.NDArray[np.int32],
                key_deleted: npt.NDArray[np.uint8], path_off: npt.NDArray[np.int64],
                value_type: npt.NDArray[np.uint32], value_length: npt.NDArray[np.uint32],
                value_deleted: npt.NDArray[np.uint8],
                value_name_len: npt.NDArray[np.uint32]) -> dict[str, npt.NDArray[Any]]: ...
def data_bound(types: npt.NDArray[np.uint32], status: npt.NDArray[np.int32], length: npt.NDArray[np.uint32],
               rows: npt.NDArray[np.int64], decode: bool) -> npt.NDArray[np.int64]: ...
def values(mapping: Any, arena: Any, types: npt.NDArray[np.uint32], status: npt.NDArray[np.int32],
           offset: npt.NDArray[np.uint32], length: npt.NDArray[np.uint32], rows: npt.NDArray[np.int64],
           decode: bool) -> dict[str, npt.NDArray[Any]]: ...
