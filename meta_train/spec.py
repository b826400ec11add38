"""The typed run spec: a run's settings, frozen, built once from its ConfigDict.

    spec = spec.from_config(config)     # validated; what every layer below ``train`` takes

``meta_train.train`` turns the ``ml_collections.ConfigDict`` into a :class:`RunSpec` once, at
its top; below it, every layer takes the spec or the part of it it needs (the estimators an
:class:`meta_train.estimators.EstimatorSettings`, the outer loop a :class:`GroupSettings`, the
checkpoints a :class:`CheckpointSettings`, ...) and none reads the ConfigDict. The spec carries
the config as recorded (``RunSpec.recorded``: the JSON of ``config.to_dict()``), which is what
the workdir's ``run.json``, every checkpoint and every export record, byte for byte as before.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from meta_train import config as config_lib
from meta_train.estimators import EstimatorSettings
from meta_train.particles import LengthSchedule


@dataclasses.dataclass(frozen=True)
class GroupSettings:
    """The task groups of an outer step and their particle populations.

    Attributes:
        num_groups: task groups per outer step.
        pairs_per_group: antithetic pairs per group (twice as many unrolls).
        resample_every: outer steps between new task draws (0: never).
        share_programs: every configuration of one shape signature runs in one compiled
            program (``tasks.family.SharedPrograms``).
        balance: the meta-gradient is the mean of the groups' estimates scaled to unit norm
            (``outer.combine_groups``), else their plain mean.
    """

    num_groups: int
    pairs_per_group: int
    resample_every: int
    share_programs: bool
    balance: bool


@dataclasses.dataclass(frozen=True)
class MetaOptSettings:
    """The meta-optimizer: ``clip_by_global_norm(clip_norm)`` (0: none) then AdamW, on the
    top-level leaves ``trained_leaves`` of theta (``()``: all; the others stay as they are).
    Its rate at meta-update t ramps linearly from 0 to ``learning_rate`` over the first
    ``warmup_steps`` (W), then stays there (``schedule`` 'constant') or is
    ``learning_rate (1 + cos(pi (t - W) / (total_steps - W))) / 2`` ('cosine'), 0 from
    ``total_steps`` on."""

    learning_rate: float
    b1: float
    b2: float
    weight_decay: float
    clip_norm: float
    trained_leaves: tuple[str, ...] = ()
    schedule: str = "constant"
    warmup_steps: int = 0
    total_steps: int = 0


@dataclasses.dataclass(frozen=True)
class CheckpointSettings:
    """Checkpoints every ``every`` outer steps, the newest ``keep`` of them kept."""

    every: int
    keep: int


@dataclasses.dataclass(frozen=True)
class ExportSettings:
    """An export every ``every`` outer steps; ``keep_snapshots``: each also kept as
    ``exports/step_N``."""

    every: int
    keep_snapshots: bool


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """The end-of-run held-out evaluation: ``num_tasks`` (0: none) tasks of ``suite``, each
    trained ``steps`` steps over ``seeds`` seeds."""

    suite: str
    num_tasks: int
    steps: int
    seeds: int


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything a meta-training run is, as typed, frozen values (:func:`from_config`).

    Attributes:
        seed: the run's seed (task draws, particles, the initial theta).
        zoo: the name of the task zoo (``tasks.zoo``).
        lopt: the learned optimizer (a frozen dataclass of static settings).
        init_from: '' (``lopt``'s init) or a shipped name / saved directory to start from.
        estimator: the meta-gradient estimator's settings.
        groups: the task groups and their populations.
        meta_opt: the meta-optimizer.
        outer_steps: outer steps of the whole run.
        log_every: outer steps between rows of ``metrics.jsonl``.
        checkpoint: when checkpoints are saved and how many are kept.
        export: when the optimizer is exported.
        eval: the end-of-run held-out evaluation.
        max_nonfinite_steps: non-finite meta-updates in a row that stop the run.
        recorded: the config as JSON (``config.to_dict()``): what the workdir records.
    """

    seed: int
    zoo: str
    lopt: Any
    init_from: str
    estimator: EstimatorSettings
    groups: GroupSettings
    meta_opt: MetaOptSettings
    outer_steps: int
    log_every: int
    checkpoint: CheckpointSettings
    export: ExportSettings
    eval: EvalSettings
    max_nonfinite_steps: int
    recorded: str

    def config_dict(self) -> dict:
        """The recorded config as a fresh dict (what checkpoints and exports store)."""
        return json.loads(self.recorded)

    def identity(self) -> dict:
        """The run's identity (``config.run_identity``: what ``run.json`` holds)."""
        return config_lib.run_identity(self.config_dict())


def from_config(config) -> RunSpec:
    """Validate ``config`` and turn it into the :class:`RunSpec` of its run.

    Args:
        config: the run's ``ml_collections.ConfigDict`` (``config.base`` and its variants).

    Returns:
        The frozen spec. Raises ``config.ConfigError`` naming the first field that makes no
        sense, or an optimizer that cannot be built.
    """
    c = config_lib.validate(config)
    episode = LengthSchedule(c.episode.kind, c.episode.min_length, c.episode.max_length)
    m = c.meta_opt
    trained = config_lib.leaf_names(c.trained_leaves)
    estimator = EstimatorSettings(
        name=c.estimator,
        sigma=c.sigma,
        truncation_length=c.truncation_length,
        episode=episode,
        loss_clip=c.loss_clip,
        log_loss=c.log_loss,
        late_weight=float(c.late_weight),
        communication=c.communication,
        exchange_quantization=c.exchange_quantization,
        perturbed_leaves=trained,
    )
    return RunSpec(
        seed=c.seed,
        zoo=c.zoo,
        lopt=config_lib.build_lopt(c),
        init_from=c.init_from,
        estimator=estimator,
        groups=GroupSettings(
            num_groups=c.num_groups,
            pairs_per_group=c.pairs_per_group,
            resample_every=c.group_resample_every,
            share_programs=c.share_programs,
            balance=c.balance_groups,
        ),
        meta_opt=MetaOptSettings(
            m.learning_rate,
            m.b1,
            m.b2,
            m.weight_decay,
            m.clip_norm,
            trained,
            schedule=m.schedule,
            warmup_steps=m.warmup_steps,
            total_steps=c.outer_steps,
        ),
        outer_steps=c.outer_steps,
        log_every=c.log_every,
        checkpoint=CheckpointSettings(every=c.checkpoint_every, keep=c.keep_checkpoints),
        export=ExportSettings(every=c.export_every, keep_snapshots=c.keep_exports),
        eval=EvalSettings(c.eval.suite, c.eval.num_tasks, c.eval.steps, c.eval.seeds),
        max_nonfinite_steps=c.max_nonfinite_steps,
        recorded=json.dumps(c.to_dict()),
    )
