"""Nested run state as JSON plus a tensor table: a lossless codec that never runs code on load.

:func:`encode` turns a value into a JSON-compatible structure and a ``{key: tensor}`` table
(written as safetensors); :func:`decode` inverts it. Bit-exact round trips for

- ``None``, ``bool``, ``str``, ``int`` (any size: NumPy's 128-bit PCG64 state), ``float``
  (NaN, infinities and -0.0 included, by their IEEE bits);
- ``list``, ``tuple`` and ``dict`` nested to any depth; dict keys may be any of these scalars
  or tuples of them (not only strings) and keep their type and order;
- ``torch.Tensor`` (stored natively, keyed by its path in the structure, e.g.
  ``strategy_state/momentum``; it comes back as a plain CPU tensor without grad);
- ``numpy.ndarray`` of any fixed-size dtype (stored as raw bytes with dtype and shape) and
  NumPy scalars (inline).

Anything else (objects, dataclasses, object arrays) is refused when encoding, with its path.
In the JSON, a dict with a ``"$type"`` key is a tagged value; a plain dict whose keys are all
strings and none is ``"$type"`` is written as a JSON object unchanged.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import torch

TAG = "$type"
SAFE_ARRAY_KINDS = frozenset("biufcmMSU")  # fixed-size dtypes: no object pointers, no structured records


class StateDecodeError(ValueError):
    """A stored structure does not decode (damaged, hand-edited or not written by :func:`encode`)."""


def encode(value: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """The JSON-compatible form of ``value`` and the tensors it refers to.

    Raises
    ------
    TypeError
        A value (named by its path) is of a type the codec does not store, or the structure has a cycle.
    """
    encoder = _Encoder()
    return encoder.encode(value, "", frozenset()), encoder.tensors


def decode(structure: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Rebuild the value :func:`encode` produced ``structure`` and ``tensors`` from.

    Raises
    ------
    StateDecodeError
        The structure is malformed or refers to a tensor that is missing or of the wrong size.
    """
    try:
        return _decode(structure, tensors)
    except RecursionError:
        raise StateDecodeError("the structure is nested too deeply") from None


class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def encode(self, value: Any, path: str, open_containers: frozenset[int]) -> Any:
        kind = type(value)
        if value is None or kind in (bool, int, str):
            return value
        if kind is float:
            return value if math.isfinite(value) else {TAG: "float", "bits": _float_bits(value)}
        if isinstance(value, np.generic):
            return self._numpy_scalar(value, path)
        if isinstance(value, torch.Tensor):
            return {TAG: "tensor", "key": self._store(path, value.detach().cpu().contiguous().clone())}
        if isinstance(value, np.ndarray):
            return self._array(value, path)
        if kind in (list, tuple, dict):
            if id(value) in open_containers:
                raise TypeError(f"the state at {path or '/'} contains itself; a checkpoint must be a tree")
            inner = open_containers | {id(value)}
            if kind is list:
                return [self.encode(v, f"{path}/{i}", inner) for i, v in enumerate(value)]
            if kind is tuple:
                return {TAG: "tuple", "items": [self.encode(v, f"{path}/{i}", inner) for i, v in enumerate(value)]}
            return self._dict(value, path, inner)
        raise TypeError(f"cannot store {kind.__name__} at {path or '/'} in a checkpoint; "
                        "use JSON scalars, lists, tuples, dicts, tensors or NumPy arrays")

    def _dict(self, value: dict[Any, Any], path: str, inner: frozenset[int]) -> Any:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: self.encode(v, f"{path}/{_escape(k)}", inner) for k, v in value.items()}
        items = []
        for k, v in value.items():
            if not _scalar_key(k):
                raise TypeError(f"a dict key at {path or '/'} is a {type(k).__name__}; "
                                "keys must be JSON scalars, NumPy scalars or tuples of them")
            items.append([self.encode(k, "", inner), self.encode(v, f"{path}/{_escape(str(k))}", inner)])
        return {TAG: "dict", "items": items}

    def _numpy_scalar(self, value: np.generic, path: str) -> dict[str, Any]:
        stored = np.asarray(value)  # an empty np.str_ has dtype <U0 but is stored as <U1
        dtype = _storable(stored.dtype, path)
        return {TAG: "npscalar", "dtype": dtype.str, "hex": stored.tobytes().hex()}

    def _array(self, value: np.ndarray, path: str) -> dict[str, Any]:
        dtype = _storable(value.dtype, path)
        raw = np.ascontiguousarray(value).reshape(-1).view(np.uint8).copy()
        key = self._store(path, torch.from_numpy(raw))
        return {TAG: "ndarray", "key": key, "dtype": dtype.str, "shape": list(value.shape)}

    def _store(self, path: str, tensor: torch.Tensor) -> str:
        key, n = path.lstrip("/") or "value", 1
        while key in self.tensors:  # an int key and a str key with the same text
            n += 1
            key = f"{path.lstrip('/')}#{n}"
        self.tensors[key] = tensor
        return key


def _decode(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if node is None or type(node) in (bool, int, float, str):
        return node
    if type(node) is list:
        return [_decode(v, tensors) for v in node]
    if type(node) is not dict:
        raise StateDecodeError(f"unexpected {type(node).__name__} in the structure")
    if TAG not in node:
        return {k: _decode(v, tensors) for k, v in node.items()}
    tag = node[TAG]
    try:
        if tag == "float":
            return _bits_float(node["bits"])
        if tag == "tuple":
            return tuple(_decode(v, tensors) for v in _list(node["items"]))
        if tag == "dict":
            return {_hashable(_decode(k, tensors)): _decode(v, tensors) for k, v in map(_pair, _list(node["items"]))}
        if tag == "tensor":
            return _tensor(node, tensors)
        if tag == "ndarray":
            return _decode_array(node, tensors)
        if tag == "npscalar":
            dtype = _loadable(node["dtype"])
            raw = bytes.fromhex(_str(node["hex"]))
            if len(raw) != dtype.itemsize:
                raise StateDecodeError(f"a NumPy scalar of {dtype} is not {dtype.itemsize} bytes")
            return np.frombuffer(raw, dtype=dtype)[0]
    except (KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, StateDecodeError):
            raise
        raise StateDecodeError(f"bad {tag!r} entry ({type(exc).__name__}: {exc})") from None
    raise StateDecodeError(f"unknown entry type {tag!r}")


def _decode_array(node: dict[str, Any], tensors: dict[str, torch.Tensor]) -> np.ndarray:
    dtype = _loadable(node["dtype"])
    shape = tuple(int(s) for s in _list(node["shape"]))
    raw = _tensor(node, tensors)
    if raw.dtype != torch.uint8 or raw.dim() != 1 or raw.numel() != math.prod(shape) * dtype.itemsize:
        raise StateDecodeError(f"array {node['key']!r} does not hold {math.prod(shape)} values of {dtype}")
    return raw.numpy().view(dtype).reshape(shape).copy()


def _tensor(node: dict[str, Any], tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    key = _str(node["key"])
    if key not in tensors:
        raise StateDecodeError(f"tensor {key!r} is missing from the tensor file")
    return tensors[key]


def _safe_dtype(dtype: np.dtype[Any]) -> bool:
    return dtype.kind in SAFE_ARRAY_KINDS and dtype.fields is None and not dtype.hasobject


def _storable(dtype: np.dtype[Any], path: str) -> np.dtype[Any]:
    if not _safe_dtype(dtype):
        raise TypeError(f"cannot store NumPy dtype {dtype} at {path or '/'} in a checkpoint; "
                        "only fixed-size numeric, bool, date and text dtypes")
    return dtype


def _loadable(name: Any) -> np.dtype[Any]:
    dtype = np.dtype(_str(name))
    if not _safe_dtype(dtype):
        raise StateDecodeError(f"NumPy dtype {dtype} is not one the codec writes")
    return dtype


def _scalar_key(key: Any) -> bool:
    if type(key) is tuple:
        return all(_scalar_key(k) for k in key)
    return key is None or type(key) in (bool, int, float, str) or isinstance(key, np.generic)


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        raise StateDecodeError(f"a dict key of type {type(key).__name__} is not hashable") from None
    return key


def _pair(item: Any) -> tuple[Any, Any]:
    if type(item) is not list or len(item) != 2:
        raise StateDecodeError("a dict item is not a [key, value] pair")
    return item[0], item[1]


def _list(node: Any) -> list[Any]:
    if type(node) is not list:
        raise StateDecodeError(f"expected a list, found {type(node).__name__}")
    return node


def _str(node: Any) -> str:
    if type(node) is not str:
        raise StateDecodeError(f"expected a string, found {type(node).__name__}")
    return node


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _float_bits(value: float) -> str:
    return struct.pack(">d", value).hex()


def _bits_float(bits: Any) -> float:
    raw = bytes.fromhex(_str(bits))
    if len(raw) != 8:
        raise StateDecodeError("a float is not 8 bytes")
    return float(struct.unpack(">d", raw)[0])
