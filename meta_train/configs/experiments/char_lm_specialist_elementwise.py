"""``experiments/char_lm_specialist_wide`` continued from its chosen snapshot with a
per-parameter network on top of the per-tensor rule (``ExperimentalScaleFreeLOpt``,
``elementwise_hidden=8``: 6 features per parameter -> 8 tanh units -> one term added to the
direction, 64 more meta-parameters). The snapshot's theta is padded with the network's zero
output weights, so the run starts exactly at the specialist; everything else is the wide run's
recipe. Every run before it could only rescale and remix whole tensors.

Outcome: running.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise --workdir=runs/elementwise
"""

from meta_train.configs.experiments import char_lm_specialist_wide


def get_config():
    c = char_lm_specialist_wide.get_config()
    c.init_from = "results/char_lm_specialist_long/export_wide_step_400"
    c.lopt.architecture = "scale_free_experimental"
    c.lopt.config = dict(c.lopt.config, elementwise_hidden=8)
    c.outer_steps = 400
    return c
