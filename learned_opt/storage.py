"""Save and load learned optimizers: a directory with ``lopt.json`` and ``theta.msgpack``.

Layout of a saved optimizer (what :func:`save` writes)::

    <dir>/lopt.json      {"format_version": 1, "architecture": "scale_free", "config": {...},
                          "metadata": {...}, "theta_file": "theta.msgpack",
                          "theta_sha256": "<hex sha256 of theta.msgpack>"}
    <dir>/theta.msgpack  theta in flax's msgpack format (nested dicts of float32 arrays), read and
                         written by ``learned_opt.serialization`` without flax

``config`` holds every setting of the architecture (``lopt.to_config()``). The shipped optimizers
live in ``learned_opt/pretrained/<name>/`` in the same layout, with one addition: two shipped
names whose weights are the same and whose settings differ share one theta file. Such a
``lopt.json`` has ``"theta_from": "<other shipped name>"`` in place of ``theta_file`` (read only
inside the shipped directory, and only naming a shipped optimizer with its own theta file) and
still carries ``theta_sha256``, which the shared file must match. :data:`RECOMMENDED` is the
shipped optimizer to use; :data:`SPECIALISTS` are meta-trained further for one model family each;
the others are archived (:func:`pretrained_info`).

No pickle anywhere. ``load`` checks the format version, the architecture name, the settings
(``config`` must be present, and every setting within its range), the checksum and every array's
shape and dtype against ``jax.eval_shape(lopt.init_meta_params, key)``, and each failure
(including a file that cannot be read: a directory, a symlink loop, no permission) raises a
``LoadError`` that names the file and the problem. ``save`` writes into a temporary
directory beside the target and renames it into place, so a crash never leaves half a save.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from learned_opt import common, files, serialization
from learned_opt.hyper import HyperLOpt
from learned_opt.mlp import MLPLOpt
from learned_opt.scale_free import ExperimentalScaleFreeLOpt, ScaleFreeLOpt

# The format's JAX-free reader is learned_opt.files (shared with learned_opt.torch); this module
# adds the architectures, saving and the optax transform.
FORMAT_VERSION = files.FORMAT_VERSION
DESCRIPTION_FILE = files.DESCRIPTION_FILE
THETA_FILE = files.THETA_FILE
PRETRAINED_DIR = files.PRETRAINED_DIR  # read at each call (tests point it elsewhere)
# the shipped optimizer to use, loaded when no name is given
RECOMMENDED = files.RECOMMENDED
# shipped specialists: name -> the model family each was meta-trained for
SPECIALISTS = files.SPECIALISTS
LoadError = files.LoadError
NotFoundError = files.NotFoundError

ARCHITECTURES: dict[str, type] = {
    MLPLOpt.name: MLPLOpt,
    HyperLOpt.name: HyperLOpt,
    ScaleFreeLOpt.name: ScaleFreeLOpt,
    ExperimentalScaleFreeLOpt.name: ExperimentalScaleFreeLOpt,
}


# --------------------------------------------------------------------------- descriptions
def to_description(lopt: Any) -> dict:
    """``{"architecture": name, "config": settings}`` for a learned optimizer object."""
    return {"architecture": lopt.name, "config": lopt.to_config()}


def from_config(description: dict) -> Any:
    """Rebuild a learned optimizer from ``{"architecture": name, "config": {...}}``.

    ``description`` may be the whole ``lopt.json`` content; only those two keys are read. Both
    are required (a missing ``config`` is an error, not the default settings: those would be a
    different optimizer). Every setting is checked against its range (``ValueError`` naming it).
    """
    if not isinstance(description, dict) or "architecture" not in description:
        raise ValueError(
            "from_config: expected a dict with keys 'architecture' and 'config', "
            f"got {description!r}"
        )
    if "config" not in description:
        raise ValueError(
            "from_config: field 'config' is missing (the architecture's settings; {} for the "
            "defaults)"
        )
    name = description["architecture"]
    if not isinstance(name, str) or name not in ARCHITECTURES:
        raise ValueError(
            f"from_config: unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}"
        )
    cls = ARCHITECTURES[name]
    config = description["config"]
    if not isinstance(config, dict):
        raise ValueError(f"from_config: 'config' must be a dict, got {config!r}")
    fields = {f.name: f for f in cls.__dataclass_fields__.values()}
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise ValueError(f"from_config: unknown setting(s) {unknown} for architecture {name!r}")
    for key, value in config.items():
        files.check_setting(name, key, value, fields[key].default)
    try:
        lopt = cls(**config)
        jax.eval_shape(lopt.init_meta_params, jax.random.key(0))
    except (TypeError, ValueError, ArithmeticError) as e:
        raise ValueError(f"from_config: bad settings for architecture {name!r}: {e}") from None
    return lopt


def _meta_template(lopt: Any) -> Any:
    return serialization.to_state_dict(jax.eval_shape(lopt.init_meta_params, jax.random.key(0)))


# --------------------------------------------------------------------------- save
def save(path: str | os.PathLike, lopt: Any, theta: Any, metadata: dict | None = None) -> str:
    """Write ``lopt`` and ``theta`` to directory ``path`` atomically (replacing it if present).

    ``metadata`` is any JSON-serialisable dict (training config, task suite, ...). Returns the
    path written. Raises ``ValueError`` if ``theta`` does not fit ``lopt``'s architecture.
    """
    path = pathlib.Path(path)
    if lopt.name not in ARCHITECTURES:
        raise ValueError(
            f"save: unknown architecture {lopt.name!r}; known: {sorted(ARCHITECTURES)}"
        )
    state = serialization.to_state_dict(jax.tree.map(np.asarray, jax.device_get(theta)))
    try:
        files.check_theta(_meta_template(lopt), state, f"save({str(path)!r})")
        files.check_finite(state, f"save({str(path)!r})")
    except LoadError as e:
        raise ValueError(str(e)) from None
    data = serialization.msgpack_serialize(state)
    description = {
        "format_version": FORMAT_VERSION,
        **to_description(lopt),
        "metadata": metadata or {},
        "theta_file": THETA_FILE,
        "theta_sha256": hashlib.sha256(data).hexdigest(),
    }
    try:
        text = json.dumps(description, indent=2, sort_keys=True)
    except TypeError as e:
        raise TypeError(f"save: metadata is not JSON-serialisable: {e}") from e

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        (tmp / THETA_FILE).write_bytes(data)
        (tmp / DESCRIPTION_FILE).write_text(text + "\n")
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(path)


# --------------------------------------------------------------------------- load
def pretrained_names() -> list[str]:
    """Names of the learned optimizers shipped under ``learned_opt/pretrained/<name>/``:
    :data:`RECOMMENDED` first, then the others in alphabetical order."""
    return files.pretrained_names(PRETRAINED_DIR)


def archived_names() -> list[str]:
    """The shipped names that are neither :data:`RECOMMENDED` nor a specialist: still loadable,
    kept so that earlier results can be reproduced; new work should use :data:`RECOMMENDED`."""
    return [n for n in pretrained_names() if n != RECOMMENDED and n not in SPECIALISTS]


class PretrainedInfo(NamedTuple):
    """One shipped learned optimizer (:func:`pretrained_info`).

    name:        the name :func:`load` takes.
    archived:    True for every shipped name but :data:`RECOMMENDED` and the specialists.
    description: one line; an archived one's starts with ``"archived: use <RECOMMENDED>"``, a
                 specialist's with ``"specialist for <family>"``.
    family:      the model family a specialist was meta-trained for; ``""`` for the others.
    """

    name: str
    archived: bool
    description: str
    family: str = ""


def pretrained_info() -> list[PretrainedInfo]:
    """Name, archived flag and a one-line description of each shipped learned optimizer, in the
    order of :func:`pretrained_names` (the recommended one first).

    The description is the ``metadata.summary`` of the optimizer's ``lopt.json``.
    """
    out = []
    for name in pretrained_names():
        meta = load_description(name).get("metadata")
        summary = meta.get("summary", "") if isinstance(meta, dict) else ""
        family = SPECIALISTS.get(name, "")
        archived = name != RECOMMENDED and not family
        if archived:
            summary = f"archived: use {RECOMMENDED}. {summary}".rstrip()
        elif family:
            summary = f"specialist for {family}; elsewhere use {RECOMMENDED}. {summary}".rstrip()
        out.append(PretrainedInfo(name, archived, summary, family))
    return out


def load_meta_params(name_or_path: str | os.PathLike | None = None) -> tuple[Any, Any]:
    """Read a saved (or shipped) learned optimizer.

    Args:
      name_or_path: a shipped name (:func:`pretrained_names`; ``None``: :data:`RECOMMENDED`), a
        directory written by :func:`save`, or its ``lopt.json``.

    Returns:
      ``(lopt, theta)``: the architecture object with the saved settings, and its
      meta-parameters (a pytree of float32 arrays, checked against the architecture).

    Raises:
      LoadError: naming the file and the field, for every problem (its subclass
        :class:`NotFoundError` when there is no such optimizer).
    """
    root = files.resolve(name_or_path, PRETRAINED_DIR)
    desc_file = root / DESCRIPTION_FILE
    desc = files.read_description(desc_file)
    try:
        lopt = from_config(desc)
    except ValueError as e:
        raise LoadError(f"{desc_file}: field 'config': {e}") from None
    theta_file, state = files.read_theta(root, desc, PRETRAINED_DIR)
    template = _meta_template(lopt)
    files.check_theta(template, state, str(theta_file))
    files.check_finite(state, str(theta_file))
    theta = jax.tree.map(
        jnp.asarray,
        serialization.from_state_dict(
            jax.eval_shape(lopt.init_meta_params, jax.random.key(0)), state
        ),
    )
    return lopt, theta


def theta_path(name_or_path: str | os.PathLike | None = None) -> pathlib.Path:
    """The weights file a saved or shipped optimizer's ``lopt.json`` names (for a shipped one with
    ``theta_from``, the file of the shipped optimizer it names). Its checksum is not checked here:
    :func:`load_meta_params` does that."""
    root = files.resolve(name_or_path, PRETRAINED_DIR)
    desc_file = root / DESCRIPTION_FILE
    return files.theta_path(root, files.read_description(desc_file), desc_file, PRETRAINED_DIR)


def load_description(name_or_path: str | os.PathLike | None = None) -> dict:
    """The parsed ``lopt.json`` (architecture, config, metadata, ...) of a saved or shipped
    optimizer (``None``: :data:`RECOMMENDED`)."""
    return files.read_description(files.resolve(name_or_path, PRETRAINED_DIR) / DESCRIPTION_FILE)


def load(
    name_or_path: str | os.PathLike | None = None,
    *,
    num_steps: Any = None,
    param_tags: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Load a shipped or saved learned optimizer as an optax transform.

    Use the recommended optimizer, :data:`RECOMMENDED` (``"scale_free_v7"``), which is what
    ``load`` gives without a name::

        tx = learned_opt.load(num_steps=10_000)      # same as load("scale_free_v7", ...)
        state = tx.init(params)
        updates, state = tx.update(grads, state, params, value=loss)
        params = optax.apply_updates(params, updates)

    :func:`pretrained_info` lists the shipped names; all but the recommended one are archived
    (kept loadable to reproduce earlier results).

    ``num_steps`` is the planned number of training steps, the length of the run the optimizer
    is used for. The ``scale_free`` optimizers need it: their warmup + cosine prior is laid out
    over it (linear warmup over ``num_steps // 20`` steps, cosine decay to 0 at ``num_steps``),
    and from step ``num_steps`` on every update is 0, so the optimizer stops moving; pass the
    real length of training. The ``hyper_small_*`` optimizers read the fraction of training done,
    ``min(count / num_steps, 2)``, as a feature; for them it defaults to 1,000, and past it they
    keep moving with that feature above 1 (beyond what they were meta-trained on).

    Non-finite gradients: a single NaN or inf element of a gradient enters the optimizer's
    accumulators and per-tensor statistics, and from then on every update of that tensor is NaN
    (in all three architectures). Where a step may produce one, wrap the transform::

        tx = optax.apply_if_finite(learned_opt.load(num_steps=n), max_consecutive_errors=5)

    A step whose gradients are not all finite then gives a zero update and leaves the optimizer
    state as it was, so later updates equal those of a run that never saw that step (after more
    than ``max_consecutive_errors`` such steps in a row, they are applied).

    Args:
      name_or_path: ``None`` for :data:`RECOMMENDED`, a shipped name (:func:`pretrained_names`),
        or a directory written by :func:`save` (or its ``lopt.json``).
      num_steps: the planned number of training steps, an integer >= 1 (``None``: the
        architecture's default; ``scale_free`` has none), else ``ValueError`` naming it.
      param_tags: muP tags per leaf ('input' / 'hidden' / 'output' / None, the params' tree), or
        ``None`` to derive them from the params (see ``learned_opt.base``).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose ``update(grads, state, params,
      value=loss)`` takes the params and the current loss.

    Raises:
      LoadError: the optimizer is missing (:class:`NotFoundError`) or its files are not valid.
      ValueError: ``num_steps`` is not an integer >= 1, or is missing for ``scale_free``.
    """
    if num_steps is not None:
        common.check_num_steps(num_steps, "learned_opt.load")
    lopt, theta = load_meta_params(name_or_path)
    return lopt.optimizer(theta, num_steps=num_steps, param_tags=param_tags)
