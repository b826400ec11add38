"""Pytree helpers shared by the learned optimizers: input checks, normalisation, muP tags.

Nothing here holds state; every function is pure and works on any pytree of float leaves
(dicts, lists, tuples, flax ``nnx.State``, scalars, 0-d to 4-d arrays, empty subtrees).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

MUP_TAGS = ("input", "hidden", "output")


def tupled(x: Any) -> Any:
    """A list or tuple as a tuple (hashable dataclass field); anything else unchanged."""
    return tuple(x) if isinstance(x, list | tuple) else x


def dataclass_config(obj: Any) -> dict:
    """JSON-serialisable fields of a frozen dataclass (tuples as lists): ``cls(**result)``
    rebuilds ``obj``. The ``to_config`` of every architecture."""
    return {
        f.name: list(v) if isinstance(v := getattr(obj, f.name), tuple) else v
        for f in dataclasses.fields(obj)
    }


@dataclasses.dataclass(frozen=True)
class Range:
    """The allowed values of a numeric setting: ``text`` describes them, ``ok`` tests one
    (finite) value, and ``integer`` asks for an int (a Python or numpy integer, not a bool)."""

    text: str
    ok: Callable[[Any], bool]
    integer: bool = False


DECAY = Range("a number in [0, 1)", lambda x: 0 <= x < 1)
POSITIVE = Range("a finite number > 0", lambda x: x > 0)
NON_NEGATIVE = Range("a finite number >= 0", lambda x: x >= 0)
COUNT = Range("an integer >= 1", lambda x: x >= 1, integer=True)


def _is_real(x: Any, integer: bool) -> bool:
    """``x`` is a finite real number (an integer if ``integer``), not a bool."""
    if isinstance(x, bool | np.bool_):
        return False
    if integer:
        return isinstance(x, int | np.integer)
    return isinstance(x, int | float | np.integer | np.floating) and math.isfinite(x)


def check_settings(
    obj: Any, scalars: dict[str, Range], sequences: dict[str, Range] | None = None
) -> None:
    """Raise ``ValueError`` naming the first field of the dataclass ``obj`` out of its range.

    Args:
      obj: a learned optimizer (its class name starts the message).
      scalars: field name -> the :class:`Range` its value must lie in.
      sequences: field name -> the :class:`Range` of every entry of its tuple value.
    """
    who = type(obj).__name__
    for name, rule in scalars.items():
        value = getattr(obj, name)
        if not (_is_real(value, rule.integer) and rule.ok(value)):
            raise ValueError(f"{who}: {name} must be {rule.text}, got {value!r}")
    for name, rule in (sequences or {}).items():
        value = getattr(obj, name)
        if not isinstance(value, tuple):
            raise ValueError(f"{who}: {name} must be a list of values, got {value!r}")
        for x in value:
            if not (_is_real(x, rule.integer) and rule.ok(x)):
                raise ValueError(
                    f"{who}: {name} has the entry {x!r}; every entry must be {rule.text} "
                    f"(got {value!r})"
                )


def check_num_steps(num_steps: Any, who: str) -> None:
    """Raise ``ValueError`` naming ``num_steps`` and its value unless it is an integer >= 1.

    Accepted: a Python or numpy integer (not a bool) >= 1, or a scalar integer array; a concrete
    array must hold a value >= 1, a traced one (the meta-trainer's ``vmap`` over episode lengths)
    is checked for its dtype and shape only.

    Args:
      num_steps: the planned number of training steps given to ``optimizer``.
      who: the caller, named in the message (e.g. ``"HyperLOpt.optimizer"``).
    """
    if isinstance(num_steps, bool | np.bool_):
        ok = False
    elif isinstance(num_steps, int | np.integer):
        ok = num_steps >= 1
    elif isinstance(num_steps, jax.Array | np.ndarray):
        ok = jnp.issubdtype(num_steps.dtype, jnp.integer) and jnp.ndim(num_steps) == 0
        if ok and not isinstance(num_steps, jax.core.Tracer):
            ok = int(num_steps) >= 1
    else:
        ok = False
    if not ok:
        raise ValueError(
            f"{who}: num_steps must be an integer >= 1 (the planned number of training steps), "
            f"got {num_steps!r}"
        )


def _is_tag_leaf(x: Any) -> bool:
    return x is None or isinstance(x, str)


def check_float_leaves(tree: Any, what: str = "params") -> None:
    """Raise ``TypeError`` naming the first leaf of ``tree`` that is not a floating-point array."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            try:
                dtype = jnp.asarray(leaf).dtype
            except TypeError as e:
                raise TypeError(
                    f"learned optimizer: {what} leaf {jax.tree_util.keystr(path)} is not an array "
                    f"({type(leaf).__name__}); only floating-point leaves are supported"
                ) from e
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"learned optimizer: {what} leaf {jax.tree_util.keystr(path)} has dtype {dtype}; "
                "only floating-point leaves (float32, bfloat16, ...) can be optimised"
            )


def rms(x: jax.Array, eps: float = 1e-30) -> jax.Array:
    """Root-mean-square over all elements of ``x`` (0 for an empty array): sqrt(mean(x^2) + eps)."""
    n = max(x.size, 1)
    return jnp.sqrt(jnp.sum(jnp.square(x)) / n + eps)


def time_embedding(count: jax.Array, timescales: tuple[float, ...]) -> jax.Array:
    """tanh(count / s) for each timescale s (LOLv2 step features). Shape ``(len(timescales),)``."""
    t = count.astype(jnp.float32)
    return jnp.tanh(t / jnp.asarray(timescales, jnp.float32))


def mup_tags(params: Any) -> Any:
    """Derive muP tags from a params tree (same structure; leaves are strings or ``None``).

    Leaves are visited in tree order (``jax.tree_util`` order: sorted dict keys). Among non-empty
    leaves with ``ndim >= 2`` (kernels, conv filters, embeddings) the first is ``'input'``, the
    last is ``'output'`` and the others are ``'hidden'``; a lone kernel is ``'input'``. 0-d and
    1-d leaves (biases, norm scales) and zero-size leaves get ``None`` (step multiplier 1).
    Check the result for models whose tree order does not follow the forward pass (pass your own
    ``param_tags`` then).
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    kernels = [i for i, x in enumerate(leaves) if jnp.ndim(x) >= 2 and jnp.size(x) > 0]
    tags: list[str | None] = [None] * len(leaves)
    for rank, i in enumerate(kernels):
        if rank == 0:
            tags[i] = "input"
        elif rank == len(kernels) - 1:
            tags[i] = "output"
        else:
            tags[i] = "hidden"
    return jax.tree_util.tree_unflatten(treedef, tags)


def flatten_tags(param_tags: Any, params: Any) -> list[str | None]:
    """Flatten ``param_tags`` to a list aligned with ``jax.tree_util.tree_leaves(params)``."""
    treedef = jax.tree_util.tree_structure(params)
    try:
        tags = treedef.flatten_up_to(param_tags)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"param_tags does not have the structure of params ({treedef}): {e}"
        ) from e
    for path_tag in tags:
        if not _is_tag_leaf(path_tag) or (path_tag is not None and path_tag not in MUP_TAGS):
            raise ValueError(
                f"param_tags leaf {path_tag!r} is not one of 'input', 'hidden', 'output' or None"
            )
    return tags


def mup_multipliers(params: Any, param_tags: Any) -> list[jax.Array]:
    """Per-tensor muP step multipliers (muLO): 1/fan_in for ``'hidden'`` tensors, else 1.

    fan_in is the product of all dims but the last (a kernel is laid out ``(..., in, out)``).
    Returns float32 scalars aligned with ``tree_leaves(params)``; ``param_tags=None`` derives
    tags with :func:`mup_tags`.
    """
    if param_tags is None:
        param_tags = mup_tags(params)
    tags = flatten_tags(param_tags, params)
    out = []
    for leaf, tag in zip(jax.tree_util.tree_leaves(params), tags, strict=True):
        shape = jnp.shape(leaf)
        fan_in = 1
        for d in shape[:-1]:
            fan_in *= d
        scale = 1.0 / max(fan_in, 1) if tag == "hidden" else 1.0
        out.append(jnp.asarray(scale, jnp.float32))
    return out


def glorot(key: jax.Array, n_in: int, n_out: int, scale: float = 1.0) -> jax.Array:
    """Normal init with variance ``scale^2 * 2 / (n_in + n_out)``, float32, shape (n_in, n_out).

    ``jax.nn.initializers.variance_scaling(scale^2, "fan_avg", "normal")`` (Glorot normal, not
    truncated); a negative ``scale`` flips the signs.
    """
    init = jax.nn.initializers.variance_scaling(scale**2, "fan_avg", "normal")
    w = init(key, (n_in, n_out), jnp.float32)
    return w if scale >= 0 else -w


@functools.partial(jax.jit, static_argnums=0)
def jit_init(lopt: Any, key: jax.Array) -> Any:
    """``lopt._init_meta_params(key)`` compiled once per (hashable, frozen) ``lopt``.

    Building theta op by op would compile a dozen tiny programs on every first call.
    """
    return lopt._init_meta_params(key)


def loss_ema(ema: jax.Array, count: jax.Array, value: Any, decays, who: str) -> jax.Array:
    """[fast EMA, slow EMA, first value] of the loss, shape (3,), after seeing ``value``.

    The first call (``count == 0``) sets all three; a non-finite ``value`` leaves ``ema`` as is.
    ``decays`` = (fast, slow). Raises ``ValueError`` (naming ``who``) if ``value`` is not a scalar.
    """
    value = jnp.asarray(value, jnp.float32)
    if value.size != 1:
        raise ValueError(f"{who}.update: value must be a scalar loss, got shape {value.shape}")
    value = value.reshape(())
    bf, bs = decays
    upd = jnp.stack([bf * ema[0] + (1 - bf) * value, bs * ema[1] + (1 - bs) * value, ema[2]])
    new = jnp.where(count == 0, jnp.full((3,), value), upd)
    return jnp.where(jnp.isfinite(value), new, ema)


def loss_trend(ema: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(tanh((fast - slow)/|slow|), tanh((fast - first)/|first|)) from :func:`loss_ema`'s state."""
    fast, slow, first = ema[0], ema[1], ema[2]
    trend = jnp.tanh((fast - slow) / (jnp.abs(slow) + 1e-8))
    progress = jnp.tanh((fast - first) / (jnp.abs(first) + 1e-8))
    return trend, progress


def check_update_inputs(updates: Any, params: Any, value: Any, who: str) -> None:
    """The checks at the top of a learned optimizer's ``update``: ``value`` (the current loss)
    and ``params`` are given, and the gradients match the params (:func:`check_update_args`)."""
    if value is None:
        raise ValueError(
            f"{who}.update needs the current loss: call "
            "tx.update(grads, state, params, value=loss) (the loss trend is a feature); in a "
            "flax TrainState loop use learned_opt.apply_gradients(state, grads=grads, "
            "value=loss) in place of state.apply_gradients(grads=grads)"
        )
    if params is None:
        raise ValueError(f"{who}.update needs params (their RMS is a feature)")
    check_update_args(updates, params, who)


def check_update_args(updates: Any, params: Any, who: str) -> None:
    """Raise ``ValueError`` naming the leaf where ``updates`` (the gradients) and ``params``
    differ in structure or shape. Call it at the top of every learned optimizer's ``update``."""
    g_leaves, g_def = jax.tree_util.tree_flatten_with_path(updates)
    p_leaves, p_def = jax.tree_util.tree_flatten_with_path(params)
    if g_def != p_def:
        g_paths = {jax.tree_util.keystr(k) for k, _ in g_leaves}
        p_paths = {jax.tree_util.keystr(k) for k, _ in p_leaves}
        only_g, only_p = sorted(g_paths - p_paths)[:3], sorted(p_paths - g_paths)[:3]
        raise ValueError(
            f"{who}.update: grads and params have different structures (leaves only in grads: "
            f"{only_g}, only in params: {only_p}; grads {g_def}, params {p_def})"
        )
    for (path, g), (_, p) in zip(g_leaves, p_leaves, strict=True):
        if jnp.shape(g) != jnp.shape(p):
            raise ValueError(
                f"{who}.update: grads leaf {jax.tree_util.keystr(path)} has shape "
                f"{jnp.shape(g)} but params leaf has shape {jnp.shape(p)}"
            )
