"""Theta to and from bytes in flax's msgpack format, with ``msgpack`` and numpy alone.

``theta.msgpack`` files are written in the format of ``flax.serialization.msgpack_serialize``
(so flax reads them, and files flax wrote load here), without importing flax, which would pull
orbax, tensorstore and more into a core install:

- a pytree becomes a *state dict*: nested dicts with string keys (a list or tuple becomes a dict
  keyed ``"0"``, ``"1"``, ...);
- an array leaf is the msgpack extension type 1 holding ``packb((shape, dtype name, C bytes))``;
  a numpy scalar is type 3 with the same payload, a Python complex type 2;
- an array over ``MAX_CHUNK_SIZE`` bytes is stored as ``{"__msgpack_chunked_array__": True,
  "shape": {...}, "chunks": {...}}`` of flat pieces (msgpack caps one object at 2**31 - 1 bytes).

Reading needs no JAX: :func:`msgpack_restore` is ``learned_opt.files``'s. The bytes equal flax's
for the same state dict (``tests/learned_opt/test_storage.py`` checks).
"""

from __future__ import annotations

from typing import Any

import jax
import msgpack
import numpy as np

from learned_opt.files import _CHUNKED, _COMPLEX, _NDARRAY, _NPSCALAR, msgpack_restore

__all__ = ["from_state_dict", "msgpack_restore", "msgpack_serialize", "to_state_dict"]
MAX_CHUNK_SIZE = 2**30


def to_state_dict(tree: Any) -> Any:
    """Nested dicts with string keys (lists and tuples keyed by index), numpy array leaves."""
    if isinstance(tree, dict):
        return {str(k): to_state_dict(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return {str(i): to_state_dict(v) for i, v in enumerate(tree)}
    return np.asarray(tree) if isinstance(tree, jax.Array) else tree


def from_state_dict(target: Any, state: Any) -> Any:
    """``target``'s pytree structure filled with the leaves of ``state`` (a state dict)."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(target)

    def leaf(path: tuple) -> Any:
        node = state
        for entry in path:
            key = entry.key if isinstance(entry, jax.tree_util.DictKey) else entry.idx
            node = node[str(key)]
        return node

    return jax.tree_util.tree_unflatten(treedef, [leaf(p) for p, _ in paths])


def _array_bytes(x: np.ndarray) -> bytes:
    if x.dtype.hasobject or x.dtype.isalignedstruct:
        raise ValueError("object and structured dtypes cannot be serialised")
    return msgpack.packb((x.shape, x.dtype.name, x.tobytes("C")), use_bin_type=True)


def _pack(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return msgpack.ExtType(_NDARRAY, _array_bytes(x))
    if isinstance(x, np.generic):
        return msgpack.ExtType(_NPSCALAR, _array_bytes(np.asarray(x)))
    if isinstance(x, complex):
        return msgpack.ExtType(_COMPLEX, msgpack.packb((x.real, x.imag)))
    return x


def _chunk_large(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _chunk_large(v) for k, v in tree.items()}
    if isinstance(tree, np.ndarray) and tree.nbytes > MAX_CHUNK_SIZE:
        size = max(1, MAX_CHUNK_SIZE // tree.dtype.itemsize)
        flat = tree.reshape(-1)
        chunks = [flat[i : i + size] for i in range(0, flat.size, size)]
        return {
            _CHUNKED: True,
            "shape": to_state_dict(tree.shape),
            "chunks": to_state_dict(chunks),
        }
    return tree


def msgpack_serialize(state: Any) -> bytes:
    """Bytes of a state dict (see :func:`to_state_dict`), as flax's ``msgpack_serialize``."""
    return msgpack.packb(_chunk_large(to_state_dict(state)), default=_pack, strict_types=True)
