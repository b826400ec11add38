"""``experiments/char_lm_specialist_wide`` continued from its chosen snapshot with a
per-parameter network on top of the per-tensor rule (``ExperimentalScaleFreeLOpt``,
``elementwise_hidden=8``: 6 features per parameter -> 8 tanh units -> one term added to the
direction, 64 more meta-parameters). The snapshot's theta is padded with the network's zero
output weights, so the run starts exactly at the specialist; everything else is the wide run's
recipe. Every run before it could only rescale and remix whole tensors.

Outcome: on ``char_lm_validation_wide`` its exports scored 1.16, 1.18, 1.15, 1.15 at outer steps
100-400 against 1.16 for its start; step 200 was chosen (by 0.0202, at the rule's 0.02 margin;
the first lever that moved the two members the runs before it had left level). On
``char_lm_heldout`` it is 1.22x tuned AdamW + cosine and 1.38x its initial rule (1.20 and 1.35
for its start): up on three tasks, while the 56-wide one fell back below AdamW + cosine's final
loss (0.86, against 1.12) (``results/char_lm_specialist_long/``). 400 outer steps in 49 minutes,
another run beside it.

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


CHOSEN = "results/char_lm_specialist_long/export_elementwise_step_200"  # the specialist


def continued(outer_steps: int):
    """This recipe continued from its chosen snapshot (``CHOSEN``) for ``outer_steps`` steps:
    the starting point of the runs that try to improve on the specialist."""
    c = get_config()
    c.init_from = CHOSEN
    c.outer_steps = outer_steps
    return c
