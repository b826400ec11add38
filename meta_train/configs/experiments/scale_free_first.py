"""The first scale-free recipe (``scale_free_v1``'s): ``ScaleFreeLOpt`` started as Muon + Adam with
warmup/cosine, PES over the ``broad`` zoo with ``hyper_small``'s settings (episodes 100..1,000
steps, 4 groups x 8 pairs, meta-LR 3e-3, new groups every 50 steps).

Outcome: meta-training made it worse than its start on held-out tasks (``scale_free_v1``: median
0.56x tuned AdamW + cosine, untuned Muon 1.37x; ``results/validation_scale_free/``).
    lopt-meta-train --config=experiments/scale_free_first --workdir=runs/scale_free_first
"""

from meta_train import config as config_lib


def get_config():
    c = config_lib.base()
    c.zoo = "broad"
    c.lopt.architecture = "scale_free"
    c.lopt.config = dict(
        relative=False, log_scale_bound=5.0, alpha_bound=1.5, zero_init="one", mixing_fan_cap=0.0
    )
    c.episode.max_length = 1000
    c.group_resample_every = 50
    c.outer_steps = 3000
    c.meta_opt.learning_rate = 3e-3
    c.checkpoint_every = 50
    c.export_every = 100
    c.eval.update(config_lib.EMBEDDED_EVAL, num_tasks=0)  # recorded in its runs; not run
    return c
