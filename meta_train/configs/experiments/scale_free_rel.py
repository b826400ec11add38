"""``scale_free_v2``'s recipe: ``scale_free_first`` started as relative Muon (steps proportional to
RMS(p)), with episodes of 200..2,000 steps, the log meta-loss, meta-LR 1e-3 and tighter bounds on
the learned corrections.

Outcome: ``scale_free_v2`` (export 1,800, output layer halved) 1.26x tuned AdamW + cosine on
held-out tasks, below its initial rule (1.35x); ``scale_free_v3`` is v2 with ``zero_init="fan_in"``.
    lopt-meta-train --config=experiments/scale_free_rel --workdir=runs/scale_free_rel
"""

from meta_train.configs.experiments import scale_free_first


def get_config():
    c = scale_free_first.get_config()
    c.lopt.config = dict(
        relative=True, log_scale_bound=4.0, alpha_bound=1.0, zero_init="one", mixing_fan_cap=0.0
    )
    c.episode.min_length = 200
    c.episode.max_length = 2000
    c.log_loss = True
    c.meta_opt.learning_rate = 1e-3
    c.export_every = 50
    return c
