"""How a group's ES estimate reaches every device: a theta-sized all-reduce, or shared randomness.

An antithetic ES estimate is ``g = 1/(2 n sigma^2) sum_i [xi_i dpre_i + eps_i dpost_i]``: a sum
over pairs of a perturbation, which is a pure function of a random key, times a *scalar* loss
difference (``meta_train.estimators``). Two ways to get that sum onto every device of the
``particles`` mesh axis (pairs split over the devices):

* ``allreduce`` (default): each device sums its own pairs' ``xi_i dpre_i + eps_i dpost_i``; XLA
  all-reduces that theta-sized partial sum. Bytes per group and outer step ~ ``4 |theta|``.
* ``shared_randomness``: every device keeps a replicated copy of all pairs' perturbations
  (``eps``, ``xi``, their keys and ``redraw`` flags; see :data:`REPLICATED_FIELDS`), regenerating
  each truncation's ``eps`` from keys every process can compute (run key, outer step, group,
  pair). Only the per-pair scalars travel, in one XLA all-gather inside the same jitted program:
  the two differences ``dpre``, ``dpost`` and the flags ``finite`` and ``episode ended``. Every
  device then forms the same ``g`` locally. Bytes per group and outer step: a few per pair,
  independent of ``|theta|`` (cf. Zelikman et al. 2024, "Just One Byte (per gradient): A Note on
  Low-Bandwidth Decentralized Language Model Finetuning Using Shared Randomness").

  Why a replicated ``xi`` rather than regenerating it from the key chain of the episode: PES's
  ``xi_i`` is the sum of every ``eps`` the pair's episode has seen; rebuilding it would replay up
  to ``max_length / truncation_length`` draws (40 for the published 2,000 / 50) of ``P x |theta|``
  numbers per outer step, while the copy costs ``2 P |theta|`` floats of memory per device
  (8 pairs x 1M meta-parameters: 64 MB), which is small next to the inner problems' state.

Quantisation of the exchanged differences (``shared_randomness`` only):

* ``none``: float32; the estimate equals ``allreduce``'s up to summation order.
* ``int8``: ``q = floor(127 d / s + u)``, ``u ~ U[0, 1)`` (stochastic rounding) with one shared
  per-step scale ``s = max |d|`` over all pairs of the group (one scalar all-reduce). Unbiased:
  ``E[s q / 127] = d``; each exchanged difference is off by less than ``s / 127``.
* ``sign``: one bit per difference (VeLO's meta-training used only the sign), sent with a
  shared scale ``s = mean |d|`` over the group's non-zero differences (two scalars all-reduced).
  Biased: for a loss locally linear in Gaussian perturbations, with every exchanged difference
  identically distributed (e.g. FullES), ``E[s sign(d) eps] = (2/pi) E[d eps]``, i.e. the estimate
  is shrunk by ``2/pi ~ 0.64`` with its direction unbiased; with differences of unequal spread
  (PES's pre- and post-reset terms) the shrinkage differs per term.

Flags travel as bits in ``sign`` mode and as bytes (``int8``) or floats (``none``) otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from meta_train.particles import Particles

AXIS = "particles"
MODES = ("allreduce", "shared_randomness")
QUANTIZATIONS = ("none", "int8", "sign")
# Particles fields every device holds for *all* pairs in shared_randomness mode
REPLICATED_FIELDS = ("eps", "xi", "redraw", "key")


class Exchange(NamedTuple):
    """A group's communication mode (static). ``mesh`` is the ``particles`` mesh; None: no mesh
    (a single device, e.g. the estimator tests), where nothing travels but quantisation still
    applies."""

    mode: str = "allreduce"
    quantization: str = "none"
    mesh: Mesh | None = None

    @property
    def shared(self) -> bool:
        return self.mode == "shared_randomness"

    def validate(self) -> Exchange:
        if self.mode not in MODES:
            raise ValueError(f"communication must be one of {MODES}, got {self.mode!r}")
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(
                f"quantization must be one of {QUANTIZATIONS}, got {self.quantization!r}"
            )
        if self.quantization != "none" and not self.shared:
            raise ValueError("quantization needs communication='shared_randomness'")
        return self

    def split_pairs(self, tree):
        """Shared mode: constrain leaves [P, ...] to be split over the devices (each runs its own
        pairs' unrolls); identity otherwise."""
        if not self.shared or self.mesh is None:
            return tree
        sharding = NamedSharding(self.mesh, P(AXIS))
        return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), tree)

    def on_every_device(self, fn):
        """Shared mode: ``fn`` run whole on every device on replicated inputs, its outputs
        replicated (a ``shard_map`` with replicated specs: the perturbations and the estimate are
        computed, never communicated); ``fn`` itself otherwise."""
        if not self.shared or self.mesh is None:
            return fn
        return jax.shard_map(fn, mesh=self.mesh, in_specs=P(), out_specs=P(), check_vma=False)


def particles_sharding(mesh: Mesh, mode: str = "allreduce"):
    """A ``Particles``-shaped prefix of shardings: every field split over the ``particles`` axis,
    except :data:`REPLICATED_FIELDS` in ``shared_randomness`` mode."""
    split, rep = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())
    shared = mode == "shared_randomness"
    return Particles(
        **{f: rep if shared and f in REPLICATED_FIELDS else split for f in Particles._fields}
    )


INT8_LEVELS = 127.0


def _encode(ex: Exchange, diffs, flags, keys, axis):
    """One device's pairs -> the payload it sends. diffs [p, 2] f32 (0 where not finite), flags
    [p, 2] bool (finite, episode ended), keys [p] (stochastic rounding). ``axis``: the mesh axis
    name for the scale's all-reduce, or None (no mesh)."""
    reduce_max = (lambda x: jax.lax.pmax(x, axis)) if axis else (lambda x: x)
    reduce_sum = (lambda x: jax.lax.psum(x, axis)) if axis else (lambda x: x)
    if ex.quantization == "none":
        return jnp.concatenate([diffs, flags.astype(jnp.float32)], axis=1), jnp.float32(1.0)
    if ex.quantization == "int8":
        scale = reduce_max(jnp.max(jnp.abs(diffs)))
        safe = jnp.where(scale > 0, scale, 1.0)
        u = jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, 0x51), (2,)))(keys)
        q = jnp.clip(jnp.floor(diffs / safe * INT8_LEVELS + u), -INT8_LEVELS, INT8_LEVELS)
        payload = jnp.concatenate([q.astype(jnp.int8), flags.astype(jnp.int8)], axis=1)
        return payload, safe / INT8_LEVELS
    nonzero = diffs != 0
    total = reduce_sum(jnp.stack([jnp.abs(diffs).sum(), nonzero.sum().astype(jnp.float32)]))
    scale = total[0] / jnp.maximum(total[1], 1.0)
    bits = jnp.concatenate([flags, diffs > 0, nonzero], axis=1)  # [p, 6]
    return jnp.packbits(bits.reshape(-1))[None], scale  # [1, ceil(6 p / 8)]


def _decode(ex: Exchange, payload, scale, num_pairs: int):
    """All devices' payloads (concatenated in pair order) -> (diffs [P, 2], flags [P, 2])."""
    if ex.quantization == "none":
        return payload[:, :2], payload[:, 2:] > 0.5
    if ex.quantization == "int8":
        return payload[:, :2].astype(jnp.float32) * scale, payload[:, 2:] > 0
    bits = jnp.unpackbits(payload, axis=-1)  # payload [devices, bytes]
    pairs_per_device = num_pairs // payload.shape[0]
    bits = bits[:, : 6 * pairs_per_device].reshape(num_pairs, 6).astype(bool)
    flags, positive, nonzero = bits[:, :2], bits[:, 2:4], bits[:, 4:]
    diffs = jnp.where(nonzero, jnp.where(positive, scale, -scale), 0.0)
    return diffs, flags


def exchange(ex: Exchange, diffs, flags, keys):
    """Every pair's loss differences and flags on every device.

    Args:
      diffs: [P, 2] float32, (pre-reset, post-reset) antithetic differences; must be 0 where a
        pair is not finite.
      flags: [P, 2] bool, (finite, episode ended in this truncation).
      keys: [P] per-pair keys (stochastic rounding in ``int8`` mode).
    Returns:
      ``(diffs, flags)`` of all pairs, replicated in ``shared_randomness`` mode (after one
      all-gather of the payload: ``P x 16`` bytes for ``none``, ``P x 4`` for ``int8``,
      ``ceil(6 p / 8)`` bytes per device of ``p`` pairs for ``sign``); unchanged in
      ``allreduce`` mode.
    """
    if not ex.shared:
        return diffs, flags
    num_pairs = diffs.shape[0]
    if ex.mesh is None:
        payload, scale = _encode(ex, diffs, flags, keys, None)
        return _decode(ex, payload, scale, num_pairs)

    def local(d, f, k):
        payload, scale = _encode(ex, d, f, k, AXIS)
        return jax.lax.all_gather(payload, AXIS, tiled=True), scale

    payload, scale = jax.shard_map(
        local,
        mesh=ex.mesh,
        in_specs=(P(AXIS), P(AXIS), P(AXIS)),
        out_specs=(P(), P()),
        check_vma=False,
    )(diffs, flags, keys)
    return _decode(ex, payload, scale, num_pairs)
