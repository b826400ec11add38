"""The shipped learned optimizers in PyTorch: ``torch.optim.Optimizer`` s that read the same
``lopt.json`` + ``theta.msgpack`` files as ``learned_opt.load`` and update parameters as the
optax transform does (equal within float32 rounding). No JAX is imported::

    import learned_opt.torch

    opt = learned_opt.torch.load(None, model, num_steps=10_000)  # RECOMMENDED; or a name or dir
    for x, y in batches:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step(loss=loss)           # or opt.step(closure)

Supported architectures: ``scale_free`` (the recommended optimizer and its archived versions) and
``hyper`` (the archived per-tensor LSTM ``hyper_small_*``). ``mlp`` (no shipped weights) and
``scale_free_experimental`` (the shipped specialist ``char_lm_specialist_v1``) are not ported:
loading them raises :class:`LoadError` naming the architecture.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

try:
    import torch
except ModuleNotFoundError as e:  # the core install has no torch
    if e.name != "torch":
        raise
    raise ModuleNotFoundError(
        "learned_opt.torch needs PyTorch (>= 2.9): pip install 'learned-opt[torch]'", name="torch"
    ) from None

from learned_opt import files
from learned_opt.files import RECOMMENDED, LoadError, NotFoundError
from learned_opt.torch.hyper import HyperOptimizer, HyperSettings, hyper_template
from learned_opt.torch.scale_free import ScaleFreeOptimizer, check_num_steps
from learned_opt.torch.settings import ScaleFreeSettings, theta_template

# architecture -> (settings, theta's template, optimizer)
ARCHITECTURES = {
    "scale_free": (ScaleFreeSettings, theta_template, ScaleFreeOptimizer),
    "hyper": (HyperSettings, hyper_template, HyperOptimizer),
}
SUPPORTED = tuple(ARCHITECTURES)
# module types whose 2-d weight is a (num_embeddings, features) table: flax's (in, out) layout
EMBEDDINGS = (torch.nn.Embedding, torch.nn.EmbeddingBag)

__all__ = [
    "ARCHITECTURES",
    "RECOMMENDED",
    "SUPPORTED",
    "HyperOptimizer",
    "HyperSettings",
    "LoadError",
    "NotFoundError",
    "ScaleFreeOptimizer",
    "ScaleFreeSettings",
    "load",
    "load_theta",
    "param_groups",
]


def param_groups(module: torch.nn.Module, **options: Any) -> list[dict[str, Any]]:
    """``module``'s trainable parameters as groups with their layout: the weights of
    ``nn.Embedding`` / ``nn.EmbeddingBag`` in ``"in_out"`` (a table ``(num_embeddings,
    features)``, as flax's), every other parameter in ``"out_in"`` (``nn.Linear``, convs).

    The groups are the runs of one layout in ``module.named_parameters()``'s order, so the
    parameters keep that order (which the default muP tags read).

    Args:
      module: the model.
      **options: other group options given to every group (``lr``, ``tag``).

    Returns:
      A list of dicts with ``"params"``, ``"param_names"`` and ``"layout"``.
    """
    table = {
        id(m.weight) for m in module.modules() if isinstance(m, EMBEDDINGS) and m.weight is not None
    }
    groups: list[dict[str, Any]] = []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        layout = "in_out" if id(p) in table else "out_in"
        if not groups or groups[-1]["layout"] != layout:
            groups.append({"params": [], "param_names": [], "layout": layout, **options})
        groups[-1]["params"].append(p)
        groups[-1]["param_names"].append(name)
    return groups


def load_theta(
    name_or_dir: str | os.PathLike | None = None,
) -> tuple[ScaleFreeSettings, dict[str, torch.Tensor]]:
    """Read a shipped or saved learned optimizer with the checks of ``learned_opt.load``.

    Args:
      name_or_dir: ``None`` for :data:`RECOMMENDED`, a shipped name, a directory written by
        ``learned_opt.save``, or its ``lopt.json``.

    Returns:
      ``(settings, theta)``: the architecture's settings and its meta-parameters (float32
      tensors on the CPU).

    Raises:
      LoadError: naming the file and the field: no such optimizer (:class:`NotFoundError`), an
        architecture this port does not support, bad settings, a checksum mismatch, weights of
        the wrong shape or not finite.
    """
    root = files.resolve(name_or_dir, files.PRETRAINED_DIR)
    desc_file = root / files.DESCRIPTION_FILE
    desc = files.read_description(desc_file)
    if desc["architecture"] not in SUPPORTED:
        raise LoadError(
            f"{desc_file}: field 'architecture' is {desc['architecture']!r}, which "
            f"learned_opt.torch does not support (supported: {list(SUPPORTED)}); load it with "
            "learned_opt.load (optax)"
        )
    settings_cls, template, _ = ARCHITECTURES[desc["architecture"]]
    try:
        settings = settings_cls.from_config(desc["config"])
    except (TypeError, ValueError) as e:
        raise LoadError(f"{desc_file}: field 'config': {e}") from None
    path, state = files.read_theta(root, desc, files.PRETRAINED_DIR)
    files.check_theta(template(settings), state, str(path))
    files.check_finite(state, str(path))
    return settings, _tensors(state)


def _tensors(state: Any) -> Any:
    """A state dict of numpy arrays as the same nested dicts of (writable) tensors."""
    if isinstance(state, dict):
        return {k: _tensors(v) for k, v in state.items()}
    return torch.from_numpy(np.array(state))


def load(
    name_or_dir: str | os.PathLike | None = None,
    params: Iterable[Any] | torch.nn.Module | None = None,
    *,
    num_steps: int | None = None,
) -> ScaleFreeOptimizer:
    """A shipped or saved learned optimizer as a ``torch.optim.Optimizer`` over ``params``.

    Args:
      name_or_dir: ``None`` for :data:`RECOMMENDED`, a shipped name, a saved directory or its
        ``lopt.json``. May be left out: ``load(model.parameters(), num_steps=n)``.
      params: an ``nn.Module`` (its parameters, embeddings read in their layout:
        :func:`param_groups`), or parameters or parameter groups as any
        ``torch.optim.Optimizer`` takes (every 2-d or 4-d tensor is then read as ``(out, in,
        ...)``; give ``nn.Embedding`` weights a group with ``"layout": "in_out"``).
      num_steps: the planned number of training steps, required (an int >= 1): the warmup +
        cosine schedule is laid out over it, and the optimizer stops moving after it.

    Returns:
      A :class:`ScaleFreeOptimizer`; call ``step(loss=loss)`` or ``step(closure)``.

    Raises:
      ValueError: ``num_steps`` is missing or not an integer >= 1; no ``params``; a parameter is
        not floating point.
      LoadError: the weights cannot be loaded (see :func:`load_theta`).
    """
    if params is None and not isinstance(name_or_dir, str | os.PathLike | type(None)):
        name_or_dir, params = None, name_or_dir
    if num_steps is None:
        raise ValueError(
            "learned_opt.torch.load needs num_steps (the planned number of training steps): "
            "the warmup + cosine schedule is laid out over it, e.g. "
            "learned_opt.torch.load(None, model, num_steps=10_000)"
        )
    check_num_steps(num_steps)
    if params is None:
        raise ValueError("learned_opt.torch.load needs params: a model or its parameters")
    if isinstance(params, torch.nn.Module):
        params = param_groups(params)
    settings, theta = load_theta(name_or_dir)
    optimizer = ARCHITECTURES["hyper" if isinstance(settings, HyperSettings) else "scale_free"][2]
    return optimizer(params, theta, settings, num_steps=num_steps)
