"""Run configuration: the base ``ml_collections.ConfigDict``, validation and builders.

Every config file in ``meta_train/configs/`` has ``get_config()`` returning :func:`base` with some
fields changed; :func:`base` declares every field. :func:`validate` refuses values that make no
sense, naming the field. :func:`migrate` fills the fields a run recorded before they existed.
"""

from __future__ import annotations

import json
import math

import ml_collections
import numpy as np

# fields that may change when a run is resumed (everything else must match the workdir's run)
RESUMABLE_FIELDS = (
    "outer_steps",
    "log_every",
    "checkpoint_every",
    "keep_checkpoints",
    "export_every",
    "keep_exports",
    "eval",
    "max_nonfinite_steps",
    # unquantised, both modes compute the same estimate: a run may move between them
    "communication",
)


# fields added after runs were recorded (run.json, checkpoints), with the value those runs used
OLD_RUN_VALUES = {
    "init_from": "",
    "log_loss": False,
    "balance_groups": False,
    "late_weight": 0.0,
    "share_programs": False,
    "communication": "allreduce",
    "exchange_quantization": "none",
    "trained_leaves": "",
    "meta_opt.schedule": "constant",
    "meta_opt.warmup_steps": 0,
}


META_LR_SCHEDULES = ("constant", "cosine")

# the end-of-run held-out evaluation of the named configs (``c.eval.update(EMBEDDED_EVAL)``)
EMBEDDED_EVAL = dict(suite="embedded_heldout", num_tasks=2, steps=300, seeds=2)


def base() -> ml_collections.ConfigDict:
    """Defaults from the published recipes (PES, sigma 0.01, truncation 50, AdamW + clipping)."""
    from meta_train.estimators import EstimatorSettings

    est = EstimatorSettings()  # the estimator's settings and defaults are declared there
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.zoo = "quickstart"  # tasks.zoo(name)
    c.lopt = ml_collections.ConfigDict(dict(architecture="mlp", config={}))
    # '' starts from the architecture's init (a function of seed); else a shipped name or a saved
    # directory (learned_opt.load_meta_params) of the same architecture and config: fine-tuning.
    c.init_from = ""
    c.estimator = est.name  # pes, nres, full_es or tbptt
    c.truncation_length = est.truncation_length
    c.sigma = est.sigma
    ep = est.episode  # particles.LengthSchedule
    c.episode = ml_collections.ConfigDict(
        dict(kind=ep.kind, min_length=ep.min_length, max_length=ep.max_length)
    )
    c.loss_clip = est.loss_clip
    c.log_loss = est.log_loss  # meta-loss: mean of log(normalised step loss) instead of its mean
    # step t of an episode of L steps weighs (p + 1) ((t + 1) / L)^p in the meta-loss, p this
    # (0: all the same; > 0: the loss the inner run ends at counts more; estimators.late_weights)
    c.late_weight = est.late_weight
    # meta-gradient: the mean of the groups' estimates, or (True) each group's estimate scaled
    # to unit norm first, so that every task draw steers equally (outer.combine_groups)
    c.balance_groups = False
    c.num_groups = 4  # task groups per outer step
    c.pairs_per_group = 8  # antithetic pairs per group (2x as many unrolls)
    c.group_resample_every = 200  # outer steps between new task draws (0: never)
    # run every configuration of one shape signature in one compiled program (same draws, far
    # fewer compilations; tasks.family.SwitchTask)
    c.share_programs = False
    # how a group's estimate reaches every device: 'allreduce' (a theta-sized sum) or
    # 'shared_randomness' (perturbations regenerated on every device, per-pair scalars
    # all-gathered); exchange_quantization of those scalars: 'none', 'int8' or 'sign'
    # (meta_train.communication)
    c.communication = est.communication
    c.exchange_quantization = est.exchange_quantization
    c.outer_steps = 1000
    # schedule: 'constant' (learning_rate throughout) or 'cosine' (from learning_rate to 0 at
    # outer_steps); either after a linear warmup from 0 over warmup_steps meta-updates
    c.meta_opt = ml_collections.ConfigDict(
        dict(
            learning_rate=1e-3,
            b1=0.9,
            b2=0.999,
            weight_decay=1e-4,
            clip_norm=3.0,
            schedule="constant",
            warmup_steps=0,
        )
    )
    # comma-separated top-level leaves of theta that meta-training moves ('': all); ES perturbs
    # only these, so the estimate's variance is that of the subspace (e.g. 'w3,b3')
    c.trained_leaves = ""
    c.checkpoint_every = 100
    c.keep_checkpoints = 3
    c.log_every = 1
    c.export_every = 200
    c.keep_exports = True  # also keep each export as workdir/exports/step_N (to choose among them)
    c.eval = ml_collections.ConfigDict(dict(suite="", num_tasks=0, steps=0, seeds=1))
    # stop with an error after this many non-finite meta-updates in a row (each one is skipped)
    c.max_nonfinite_steps = 10
    return c


class ConfigError(ValueError):
    """A config value that makes no sense (the message names the field)."""


def _fail(field, value, why):
    raise ConfigError(f"config.{field}={value!r}: {why}")


INT_MAX = 2**31 - 1  # step counters and lengths are int32 on the device


def _int(c, field, lo=1, hi=INT_MAX):
    v = _get(c, field)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        _fail(field, v, f"must be an integer in [{lo}, {hi}]")


# the largest sane value of each real field (a value past it is a typo or a unit mistake)
REAL_MAX = {
    "sigma": 1.0,
    "loss_clip": 1e6,
    "meta_opt.learning_rate": 1.0,
    "meta_opt.weight_decay": 10.0,
    "meta_opt.clip_norm": 1e6,
    "late_weight": 100.0,
}


def _pos(c, field, allow_zero=False):
    v, hi = _get(c, field), REAL_MAX[field]
    if (
        isinstance(v, bool)
        or not isinstance(v, int | float)
        or not math.isfinite(v)
        or (v < 0 if allow_zero else v <= 0)
        or v > hi
    ):
        low = ">= 0" if allow_zero else "> 0"
        _fail(field, v, f"must be a finite number {low} and <= {hi:g}")


def _bool(c, field):
    v = _get(c, field)
    if not isinstance(v, bool):
        _fail(field, v, "must be True or False")


def _get(c, field):
    for part in field.split("."):
        c = c[part]
    return c


def field_parent(tree, field: str, create: bool = False):
    """``(node, name)``: the dict (or ConfigDict) of ``tree`` that holds the dotted ``field``, and
    the field's last name; a missing parent is made an empty dict with ``create``, else ``None``
    is returned as the node."""
    *parents, name = field.split(".")
    node = tree
    for parent in parents:
        if create:
            node = node.setdefault(parent, {})
        elif node is not None:
            node = node.get(parent)
    return node, name


def validate(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Raise :class:`ConfigError` naming the first field whose value makes no sense.

    Returns ``c``.
    """
    _int(c, "seed", lo=0)
    if not isinstance(c.zoo, str) or not c.zoo:
        _fail("zoo", c.zoo, "must be the name of a task zoo (tasks.zoo_names())")
    from meta_train.estimators import ESTIMATORS

    if c.estimator not in ESTIMATORS:
        _fail("estimator", c.estimator, f"must be one of {tuple(ESTIMATORS)}")
    for f in (
        "truncation_length",
        "num_groups",
        "pairs_per_group",
        "outer_steps",
        "checkpoint_every",
        "keep_checkpoints",
        "log_every",
        "export_every",
        "episode.min_length",
        "episode.max_length",
    ):
        _int(c, f)
    _int(c, "group_resample_every", lo=0)
    for f in ("sigma", "loss_clip", "meta_opt.learning_rate"):
        _pos(c, f)
    _sigma_fits_float32(c.sigma)
    for f in ("meta_opt.weight_decay", "meta_opt.clip_norm", "late_weight"):
        _pos(c, f, allow_zero=True)
    _int(c, "meta_opt.warmup_steps", lo=0)
    if c.meta_opt.schedule not in META_LR_SCHEDULES:
        _fail("meta_opt.schedule", c.meta_opt.schedule, f"must be one of {META_LR_SCHEDULES}")
    if c.meta_opt.warmup_steps >= c.outer_steps and c.meta_opt.schedule == "cosine":
        _fail(
            "meta_opt.warmup_steps",
            c.meta_opt.warmup_steps,
            f"must be below outer_steps ({c.outer_steps}) with the cosine schedule",
        )
    for f in ("meta_opt.b1", "meta_opt.b2"):
        v = _get(c, f)
        if not isinstance(v, int | float) or not 0 <= v < 1:
            _fail(f, v, "must be in [0, 1)")
    leaf_names(c.trained_leaves)
    if c.episode.kind not in ("constant", "log_uniform"):
        _fail("episode.kind", c.episode.kind, "must be 'constant' or 'log_uniform'")
    if c.episode.max_length < c.episode.min_length:
        _fail(
            "episode.max_length",
            c.episode.max_length,
            f"must be >= episode.min_length ({c.episode.min_length})",
        )
    shortest = c.episode.max_length if c.episode.kind == "constant" else c.episode.min_length
    if c.estimator != "full_es" and shortest < c.truncation_length:
        _fail(
            "episode.min_length" if c.episode.kind != "constant" else "episode.max_length",
            shortest,
            f"episodes must be at least truncation_length ({c.truncation_length}) steps long",
        )
    for f in ("keep_exports", "log_loss", "balance_groups", "share_programs"):
        _bool(c, f)
    _communication(c)
    if not isinstance(c.init_from, str):
        _fail("init_from", c.init_from, "must be '' or a shipped name / saved directory")
    if not isinstance(c.lopt.architecture, str):
        _fail("lopt.architecture", c.lopt.architecture, "must be a string, e.g. 'mlp'")
    _int(c, "eval.num_tasks", lo=0)
    _int(c, "eval.steps", lo=0)
    if c.eval.num_tasks > 0 and (not c.eval.suite or c.eval.steps < 1):
        _fail("eval.suite", c.eval.suite, "eval.num_tasks > 0 needs a suite name and eval.steps")
    _int(c, "eval.seeds", lo=1)
    if c.eval.num_tasks > 0:
        import tasks

        if c.eval.suite not in tasks.suite_names():
            _fail("eval.suite", c.eval.suite, f"unknown suite; known: {tasks.suite_names()}")
    _int(c, "max_nonfinite_steps")
    return c


def leaf_names(trained_leaves) -> tuple[str, ...]:
    """``config.trained_leaves`` ('w3,b3', or a sequence of names) as a sorted tuple of names;
    ``()`` means every leaf. Raises :class:`ConfigError` on anything else."""
    value = trained_leaves
    if isinstance(value, str):
        value = [n.strip() for n in value.split(",")] if value.strip() else []
    if not isinstance(value, list | tuple) or not all(
        isinstance(n, str) and n.isidentifier() for n in value
    ):
        _fail(
            "trained_leaves",
            trained_leaves,
            "must be '' (all) or comma-separated leaf names of theta, e.g. 'w3,b3'",
        )
    return tuple(sorted(set(value)))


def check_leaf_names(names: tuple[str, ...], theta) -> None:
    """Raise :class:`ConfigError` unless every name in ``names`` is a top-level key of
    ``theta`` (a dict)."""
    keys = sorted(theta) if isinstance(theta, dict) else []
    missing = [n for n in names if n not in keys]
    if missing:
        _fail(
            "trained_leaves",
            ",".join(names),
            f"{missing[0]!r} is not a leaf of this optimizer's theta (its leaves: "
            f"{', '.join(keys) or 'none by name'})",
        )


def _sigma_fits_float32(sigma: float) -> None:
    """The estimators divide by sigma^2 in float32: it must be a normal float32 number."""
    sq = float(np.float32(sigma)) ** 2
    info = np.finfo(np.float32)
    if not float(info.tiny) <= sq <= float(info.max):
        _fail(
            "sigma",
            sigma,
            f"sigma^2 = {sq:.3g} under- or overflows float32 (the meta-gradient divides by it); "
            f"use {float(np.sqrt(info.tiny)):.3g} < sigma < {float(np.sqrt(info.max)):.3g} "
            "(the published default is 0.01)",
        )


def build_lopt(c):
    """The learned optimizer of the config (``learned_opt.from_config``)."""
    import learned_opt

    cfg = c.lopt.config.to_dict() if hasattr(c.lopt.config, "to_dict") else dict(c.lopt.config)
    try:
        return learned_opt.from_config({"architecture": c.lopt.architecture, "config": cfg})
    except (ValueError, TypeError) as e:
        raise ConfigError(f"config.lopt: {e}") from None


def load_init_theta(source: str, lopt):
    """``theta`` saved at ``source`` (``config.init_from``: a shipped name or saved directory),
    checked against ``lopt`` (or carried over by ``lopt.meta_params_from(saved_lopt, theta)``
    where ``lopt`` has it).

    Args:
        source: the shipped name or saved directory; '' for none.
        lopt: the run's learned optimizer.

    Returns:
        The saved theta, or ``None`` when ``source`` is empty. Raises :class:`ConfigError`
        naming ``config.init_from`` when the file is missing, corrupt, or holds another
        architecture or config.
    """
    if not source:
        return None
    import learned_opt

    try:
        saved, theta = learned_opt.load_meta_params(source)
    except (OSError, ValueError) as e:
        raise ConfigError(f"config.init_from={source!r}: {e}") from None
    have, want = learned_opt.to_description(saved), learned_opt.to_description(lopt)
    if have != want and hasattr(lopt, "meta_params_from"):
        try:  # e.g. a ScaleFreeLOpt theta padded for a new gate (exactly its old updates)
            return lopt.meta_params_from(saved, theta)
        except ValueError:
            pass
    if have != want:
        raise ConfigError(
            f"config.init_from={source!r}: it holds {have}, but config.lopt builds {want}; "
            "set config.lopt to match it"
        )
    return theta


def _communication(c) -> None:
    from meta_train import communication

    mode, quant = c.communication, c.exchange_quantization
    if mode not in communication.MODES:
        _fail("communication", mode, f"must be one of {communication.MODES}")
    if mode == "shared_randomness" and c.estimator == "tbptt":
        _fail("communication", mode, "needs an ES estimator (tbptt has no perturbations)")
    if quant not in communication.QUANTIZATIONS:
        _fail("exchange_quantization", quant, f"must be one of {communication.QUANTIZATIONS}")
    if quant != "none" and mode != "shared_randomness":
        _fail("exchange_quantization", quant, "needs communication='shared_randomness'")


def build_zoo(c):
    """The task zoo of the config (:func:`load_zoo` of ``c.zoo``)."""
    return load_zoo(c.zoo)


def load_zoo(name: str):
    """``tasks.zoo(name)``; :class:`ConfigError` naming ``config.zoo`` when there is none."""
    import tasks

    try:
        return tasks.zoo(name)
    except (KeyError, ValueError) as e:
        raise ConfigError(f"config.zoo={name!r}: {e}") from None


def migrate(recorded: dict) -> dict:
    """A config (or run identity) recorded by an older version, as a dict with the fields added
    since filled with the values those runs used (:data:`OLD_RUN_VALUES`)."""
    d = json.loads(json.dumps(recorded))
    for field, value in OLD_RUN_VALUES.items():
        node, name = field_parent(d, field, create=True)
        node.setdefault(name, value)
    return d


def run_identity(c) -> dict:
    """The part of the config that defines a run (resuming with a different one is refused);
    ``c`` is a ConfigDict or a recorded config (dict, :func:`migrate`-d here)."""
    d = c.to_dict() if hasattr(c, "to_dict") else migrate(c)
    for f in RESUMABLE_FIELDS:
        d.pop(f, None)
    return d
