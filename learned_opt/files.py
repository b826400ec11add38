"""The on-disk format of a saved learned optimizer, read with the standard library, numpy and
msgpack alone (no JAX): what ``learned_opt.storage`` and ``learned_opt.torch`` share.

A saved optimizer is a directory (the layout and the checks are described in
``learned_opt.storage``)::

    <dir>/lopt.json      {"format_version": 1, "architecture": ..., "config": {...},
                          "metadata": {...}, "theta_file": "theta.msgpack",
                          "theta_sha256": "<hex sha256 of theta.msgpack>"}
    <dir>/theta.msgpack  theta in flax's msgpack format (nested dicts of float32 arrays)

Every function that resolves a shipped name takes the shipped directory as an argument
(``pretrained_dir``), so a caller decides where the shipped optimizers live. Every failure is a
:class:`LoadError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib
import stat
from typing import Any

import msgpack
import numpy as np

FORMAT_VERSION = 1
DESCRIPTION_FILE = "lopt.json"
THETA_FILE = "theta.msgpack"
PRETRAINED_DIR = pathlib.Path(__file__).resolve().parent / "pretrained"
# the shipped optimizer to use, loaded when no name is given
RECOMMENDED = "scale_free_v7"
# shipped specialists, each meta-trained further on one model family: name -> that family; every
# shipped name that is neither RECOMMENDED nor a specialist is archived
SPECIALISTS = {
    "char_lm_specialist_v1": "small char transformers (widths 16-64, depths 1-3, sequences 16-64)",
}
# the architectures a description may name (``storage.ARCHITECTURES`` maps them to classes)
ARCHITECTURE_NAMES = ("mlp", "hyper", "scale_free", "scale_free_experimental")

_NDARRAY, _COMPLEX, _NPSCALAR = 1, 2, 3  # flax's msgpack extension codes
_CHUNKED = "__msgpack_chunked_array__"


class LoadError(ValueError):
    """A saved learned optimizer could not be read (the message names the file and problem)."""


class NotFoundError(LoadError, FileNotFoundError):
    """No saved learned optimizer at that name or path (a ``LoadError`` and a
    ``FileNotFoundError``)."""


# --------------------------------------------------------------------------- msgpack
def _dtype(name: str) -> np.dtype:
    """The numpy dtype of a stored dtype name; bfloat16 and the other ml_dtypes types too."""
    try:
        return np.dtype(name)
    except TypeError:
        import ml_dtypes  # installed with jax; only needed for its extra float types

        return np.dtype(getattr(ml_dtypes, name))


def _array_from_bytes(data: bytes) -> np.ndarray:
    shape, dtype_name, buffer = msgpack.unpackb(data, raw=True)
    return np.frombuffer(buffer, dtype=_dtype(dtype_name.decode())).reshape(shape, order="C")


def _unpack(code: int, data: bytes) -> Any:
    if code == _NDARRAY:
        return _array_from_bytes(data)
    if code == _NPSCALAR:
        return _array_from_bytes(data)[()]
    if code == _COMPLEX:
        real, imag = msgpack.unpackb(data)
        return complex(real, imag)
    return msgpack.ExtType(code, data)


def _unchunk(tree: Any) -> Any:
    if not isinstance(tree, dict):
        return tree
    if _CHUNKED in tree:
        shape = tuple(tree["shape"][str(i)] for i in range(len(tree["shape"])))
        chunks = [tree["chunks"][str(i)] for i in range(len(tree["chunks"]))]
        return np.concatenate(chunks).reshape(shape)
    return {k: _unchunk(v) for k, v in tree.items()}


def msgpack_restore(data: bytes) -> Any:
    """The state dict encoded by ``data`` (numpy array leaves), as flax's ``msgpack_restore``."""
    state = msgpack.unpackb(data, ext_hook=_unpack, raw=False, strict_map_key=False)
    return _unchunk(state)


# --------------------------------------------------------------------------- names and paths
def pretrained_names(pretrained_dir: pathlib.Path = PRETRAINED_DIR) -> list[str]:
    """Names of the optimizers shipped in ``pretrained_dir`` (``<name>/lopt.json``):
    :data:`RECOMMENDED` first, then the others (specialists and archived) in alphabetical order."""
    if not pretrained_dir.is_dir():
        return []
    names = sorted(p.name for p in pretrained_dir.iterdir() if (p / DESCRIPTION_FILE).is_file())
    return sorted(names, key=lambda n: n != RECOMMENDED)  # stable: the rest stay sorted


def resolve(
    name_or_path: str | os.PathLike | None, pretrained_dir: pathlib.Path = PRETRAINED_DIR
) -> pathlib.Path:
    """The directory of a shipped name (``None``: :data:`RECOMMENDED`), a saved directory, or
    its ``lopt.json``; :class:`NotFoundError` when there is none."""
    s = RECOMMENDED if name_or_path is None else str(name_or_path)
    if s in pretrained_names(pretrained_dir):
        return pretrained_dir / s
    p = pathlib.Path(s)
    if p.is_dir() and (p / DESCRIPTION_FILE).is_file():
        return p
    if p.is_file() and p.name == DESCRIPTION_FILE:
        return p.parent
    if p.is_dir() and os.path.lexists(p / DESCRIPTION_FILE):  # there, but not a file
        check_regular_file(p / DESCRIPTION_FILE, "the description of a saved learned optimizer")
    if p.is_dir():
        raise NotFoundError(
            f"{p}: no {DESCRIPTION_FILE} in this directory (empty, or not a saved learned "
            "optimizer)"
        )
    raise NotFoundError(
        f"no learned optimizer {s!r}: not a shipped name (shipped: "
        f"{pretrained_names(pretrained_dir)}) and no directory containing {DESCRIPTION_FILE} at "
        "that path"
    )


def check_regular_file(path: pathlib.Path, context: str) -> None:
    """Raise ``NotFoundError`` if ``path`` does not exist, ``LoadError`` if it is not a readable
    regular file (a directory, a symlink loop, ...); ``context`` ends the message."""
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise NotFoundError(f"{path}: missing ({context})") from e
    except OSError as e:
        raise LoadError(f"{path}: cannot be read ({context}): {e}") from e
    if not stat.S_ISREG(st.st_mode):
        raise LoadError(f"{path}: not a regular file (a directory?) ({context})")


# --------------------------------------------------------------------------- the description
def read_description(desc_file: pathlib.Path) -> dict:
    """The parsed ``lopt.json`` with its format fields checked (``LoadError`` naming the field)."""
    try:
        desc = json.loads(desc_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LoadError(f"{desc_file}: not valid JSON (truncated or corrupt?): {e}") from e
    except OSError as e:
        raise LoadError(f"{desc_file}: cannot be read: {e}") from e
    if not isinstance(desc, dict):
        raise LoadError(f"{desc_file}: expected a JSON object, found {type(desc).__name__}")
    version = desc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise LoadError(
            f"{desc_file}: field 'format_version' is {version!r}; it must be a positive integer"
        )
    if version > FORMAT_VERSION:
        raise LoadError(
            f"{desc_file}: format_version {version} is newer than this library supports "
            f"({FORMAT_VERSION}); upgrade learned_opt"
        )
    arch = desc.get("architecture")
    if not isinstance(arch, str) or arch not in ARCHITECTURE_NAMES:
        raise LoadError(
            f"{desc_file}: field 'architecture': unknown architecture {arch!r}; "
            f"known: {sorted(ARCHITECTURE_NAMES)}"
        )
    if "config" not in desc:
        raise LoadError(
            f"{desc_file}: field 'config' is missing (the {arch!r} settings); loading the "
            "weights with the default settings would give a different optimizer"
        )
    if not isinstance(desc["config"], dict):
        raise LoadError(
            f"{desc_file}: field 'config' is {desc['config']!r}; it must be a JSON object of "
            f"the {arch!r} settings"
        )
    sha = desc.get("theta_sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise LoadError(
            f"{desc_file}: field 'theta_sha256' is {sha!r}; format_version {version} requires "
            "the hex sha256 of the theta file (the weights cannot be verified without it)"
        )
    return desc


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_setting(arch: str, key: str, value: Any, default: Any) -> None:
    """Raise ``ValueError`` naming ``key`` when ``value`` is not of the kind of its default.

    An int setting must be an int >= 1 (>= 0 where the default is 0), a float a finite number,
    a bool a bool, a str a str, and a tuple a list of finite numbers.
    """
    bad = None
    if isinstance(default, bool):
        bad = None if isinstance(value, bool) else "must be true or false"
    elif isinstance(default, int):
        lo = min(default, 1)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= lo
        bad = None if ok else f"must be an integer >= {lo}"
    elif isinstance(default, float):
        bad = None if _is_number(value) else "must be a finite number"
    elif isinstance(default, str):
        bad = None if isinstance(value, str) else "must be a string"
    elif isinstance(default, tuple):
        ok = isinstance(value, list | tuple) and all(_is_number(v) for v in value)
        bad = None if ok else "must be a list of finite numbers"
    if bad:
        raise ValueError(f"setting {key!r} of architecture {arch!r} is {value!r}: {bad}")


# --------------------------------------------------------------------------- the weights
def theta_path(
    root: pathlib.Path,
    desc: dict,
    desc_file: pathlib.Path,
    pretrained_dir: pathlib.Path = PRETRAINED_DIR,
) -> pathlib.Path:
    """The theta file named by ``desc``: a file inside ``root`` (``theta_file``), or for a shipped
    optimizer with ``theta_from``, the theta file of the shipped optimizer it names."""
    if "theta_from" in desc:
        return _shared_theta_path(root, desc, desc_file, pretrained_dir)
    name = desc.get("theta_file", THETA_FILE)
    if not isinstance(name, str) or not name:
        raise LoadError(f"{desc_file}: field 'theta_file' is {name!r}; it must be a file name")
    try:
        path = (root / name).resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop: RuntimeError or OSError (by version)
        raise LoadError(f"{root / name}: cannot be read (named by {desc_file}): {e}") from e
    if path.parent != root.resolve():
        raise LoadError(
            f"{desc_file}: field 'theta_file' is {name!r}; it must name a file inside {root}"
        )
    check_regular_file(path, f"named by {desc_file}")
    return path


def _shared_theta_path(
    root: pathlib.Path, desc: dict, desc_file: pathlib.Path, pretrained_dir: pathlib.Path
) -> pathlib.Path:
    """The theta file of the shipped optimizer named by ``desc["theta_from"]``; ``root`` must be a
    shipped optimizer's directory and the one named must have its own theta file."""
    source = desc["theta_from"]
    try:
        shipped = root.resolve().parent == pretrained_dir.resolve()
    except (OSError, RuntimeError):
        shipped = False
    if not shipped:
        raise LoadError(
            f"{desc_file}: field 'theta_from' is read only in learned_opt's shipped directory "
            f"({pretrained_dir}); a saved optimizer names its own file in 'theta_file'"
        )
    if "theta_file" in desc:
        raise LoadError(f"{desc_file}: has both 'theta_from' and 'theta_file'; give one")
    names = pretrained_names(pretrained_dir)
    if not isinstance(source, str) or source not in names or source == root.name:
        raise LoadError(
            f"{desc_file}: field 'theta_from' is {source!r}; it must be another shipped name "
            f"(shipped: {names})"
        )
    source_root = pretrained_dir / source
    source_desc = read_description(source_root / DESCRIPTION_FILE)
    if "theta_from" in source_desc:
        raise LoadError(
            f"{desc_file}: field 'theta_from' names {source!r}, which has no theta file of its "
            f"own (its 'theta_from' is {source_desc['theta_from']!r})"
        )
    return theta_path(source_root, source_desc, source_root / DESCRIPTION_FILE, pretrained_dir)


def read_theta(
    root: pathlib.Path, desc: dict, pretrained_dir: pathlib.Path = PRETRAINED_DIR
) -> tuple[pathlib.Path, Any]:
    """The theta file of the optimizer in ``root`` (described by ``desc``) and its state dict
    (nested dicts of numpy arrays), its sha256 checked against ``desc["theta_sha256"]``.

    Shapes are not checked here (:func:`check_theta` does, against an architecture's template).
    """
    desc_file = root / DESCRIPTION_FILE
    path = theta_path(root, desc, desc_file, pretrained_dir)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise LoadError(f"{path}: cannot be read: {e}") from e
    want, got = desc["theta_sha256"], hashlib.sha256(data).hexdigest()
    if got != want:
        says = desc_file.name if path.parent == root.resolve() else str(desc_file)
        raise LoadError(
            f"{path}: checksum mismatch (sha256 {got}, {says} says {want}); "
            "the file is truncated, corrupt or was modified"
        )
    try:
        state = msgpack_restore(data)
    except Exception as e:  # msgpack raises several unrelated types on bad input
        raise LoadError(f"{path}: cannot decode msgpack (truncated or corrupt): {e}") from e
    return path, state


def check_theta(template: Any, theta: Any, where: str, path: str = "theta") -> None:
    """Raise ``LoadError`` if ``theta`` (a state dict) does not match ``template`` (nested dicts
    whose leaves have ``shape`` and ``dtype``)."""
    if isinstance(template, dict):
        if not isinstance(theta, dict):
            raise LoadError(f"{where}: {path} should be a dict, found {type(theta).__name__}")
        missing, extra = sorted(set(template) - set(theta)), sorted(set(theta) - set(template))
        if missing or extra:
            raise LoadError(
                f"{where}: {path} does not fit the architecture "
                f"(missing keys {missing}, unexpected keys {extra})"
            )
        for k in template:
            check_theta(template[k], theta[k], where, f"{path}/{k}")
        return
    shape = tuple(np.shape(theta))
    if shape != tuple(template.shape):
        raise LoadError(
            f"{where}: {path} has shape {shape} but the architecture needs {tuple(template.shape)}"
        )
    dtype = getattr(theta, "dtype", None)
    if dtype != template.dtype:
        raise LoadError(f"{where}: {path} has dtype {dtype}, expected {template.dtype}")


def _leaves_with_paths(state: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(path, leaf) of a state dict in key order; a path reads like ``['w1']``."""
    if isinstance(state, dict):
        out = []
        for k in sorted(state):
            out += _leaves_with_paths(state[k], f"{prefix}[{k!r}]")
        return out
    return [(prefix, state)]


def check_finite(state: Any, where: str) -> None:
    """Raise ``LoadError`` naming the first leaf of the state dict ``state`` holding NaN or
    inf."""
    for path, leaf in _leaves_with_paths(state):
        bad = int(np.size(leaf) - np.count_nonzero(np.isfinite(leaf)))
        if bad:
            raise LoadError(
                f"{where}: theta{path} has {bad} non-finite value(s) "
                "(NaN/inf): a diverged meta-training run?"
            )
