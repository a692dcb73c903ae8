"""Reader for the IDX format of (Fashion-)MNIST, plain or gzip-compressed."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from fedfleet.errors import DataError

_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file into an array of its declared shape.

    Parameters
    ----------
    path : str or Path
        ``*.gz`` files are decompressed transparently.

    Returns
    -------
    numpy.ndarray
        Shape as declared in the header, e.g. (N, 28, 28) uint8 for images.

    Raises
    ------
    DataError
        If the file is missing, truncated, not gzip where it claims to be, or has a bad header.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"data file {path} not found") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"data file {path} is truncated or corrupt ({exc}); fetch it again") from None
    if len(raw) < 4:
        raise DataError(f"data file {path} is truncated: {len(raw)} bytes; fetch it again")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _DTYPES or ndim == 0:
        raise DataError(f"data file {path} is not an IDX file (bad header); fetch it again")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise DataError(f"data file {path} is truncated inside its header; fetch it again")
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    dtype = np.dtype(_DTYPES[dtype_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    payload = raw[header_end:]
    if len(payload) != expected:
        raise DataError(
            f"data file {path} is truncated: {len(payload)} of {expected} data bytes; fetch it again"
        )
    return np.frombuffer(payload, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed when ``path`` ends in .gz."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    blob = header + array.tobytes()
    path.write_bytes(gzip.compress(blob) if path.suffix == ".gz" else blob)
