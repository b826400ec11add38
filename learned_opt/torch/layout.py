"""How a PyTorch parameter maps onto the roles of the optax transform.

The optax transform reads flax's layouts: a dense kernel is ``(in, out)``, a conv kernel
``(kh, kw, in, out)``, an embedding table ``(num_embeddings, features)``; fan-in is the product
of all dims but the last, fan-out the last. PyTorch stores ``nn.Linear`` weights as
``(out, in)`` and conv weights as ``(out, in, *kernel)``; ``nn.Embedding`` keeps flax's
``(num_embeddings, features)``. A parameter's layout says which:

- ``"out_in"`` (the default; ``nn.Linear``, ``nn.Conv*``): the flax leaf is
  ``p.permute(*range(2, n), 1, 0)``, so ``fan_in = prod(shape[1:])``, ``fan_out = shape[0]``;
- ``"in_out"`` (``nn.Embedding``, or a tensor already in flax's layout): ``fan_in =
  prod(shape[:-1])``, ``fan_out = shape[-1]``.

A 0-d parameter has fans (1, 1), a 1-d one of length n (1, n), in both layouts. Muon's direction
applies where the flax leaf is 2-d or 4-d (matrices, 2-d conv kernels, embeddings), to the
``(fan_out, fan_in)`` matrix ``p.reshape(shape[0], -1)`` (``"out_in"``) or the ``(fan_in,
fan_out)`` matrix ``p.reshape(-1, shape[-1])`` (``"in_out"``). Newton-Schulz commutes with
transposition and with permuting the columns, so either gives the update of the flax leaf,
transposed and permuted back to the PyTorch layout.
"""

from __future__ import annotations

import math

LAYOUTS = ("out_in", "in_out")
TAGS = ("input", "hidden", "output")


def fans(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    """(fan_in, fan_out) of a parameter of ``shape`` in ``layout``, each at least 1."""
    if len(shape) < 2:
        return 1, max(shape[0], 1) if shape else 1
    if layout == "out_in":
        return max(math.prod(shape[1:]), 1), max(shape[0], 1)
    return max(math.prod(shape[:-1]), 1), max(shape[-1], 1)


def is_muon(shape: tuple[int, ...]) -> bool:
    """Parameters that get Muon's direction: 2-d and 4-d ones (as in the optax transform)."""
    return len(shape) in (2, 4)


def matrix_shape(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    """The 2-d view of a Muon parameter that Newton-Schulz orthogonalises: ``(shape[0],
    rest)`` in ``"out_in"``, ``(rest, shape[-1])`` in ``"in_out"``."""
    if layout == "out_in":
        return shape[0], math.prod(shape[1:])
    return math.prod(shape[:-1]), shape[-1]


def default_tags(shapes: list[tuple[int, ...]]) -> list[str | None]:
    """muP tags in parameter order (``learned_opt.mup_tags`` on the PyTorch order): among the
    non-empty parameters with 2 or more dims the first is ``"input"``, the last ``"output"`` and
    the others ``"hidden"`` (a lone one is ``"input"``); the rest get ``None``."""
    kernels = [i for i, s in enumerate(shapes) if len(s) >= 2 and math.prod(s) > 0]
    tags: list[str | None] = [None] * len(shapes)
    for rank, i in enumerate(kernels):
        tags[i] = "input" if rank == 0 else "output" if rank == len(kernels) - 1 else "hidden"
    return tags
