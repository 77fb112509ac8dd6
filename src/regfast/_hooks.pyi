from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

PRE: int
POST: int
WRITE: int
VETOED: int
FILE: int
OP_MAX: int
ROW_DTYPE: np.dtype[Any]
FULL_AT: int
BACKENDS: dict[int, str | None]
MODULES: list[str]

def op_name(op: int) -> str: ...
def string(sid: int) -> str | None: ...
def set_callbacks(callback: Callable[..., bool] | None, on_full: Callable[[], None] | None) -> None: ...
def configure(keep_rows: bool, pre: bool, post: bool) -> None: ...
def installed() -> bool: ...
def take() -> tuple[npt.NDArray[np.void] | None, int]: ...
def strings(ids: npt.NDArray[np.int32]) -> list[str | None]: ...
