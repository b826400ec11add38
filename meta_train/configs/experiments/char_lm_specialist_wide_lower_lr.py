"""``experiments/char_lm_specialist_wide`` continued from its chosen snapshot with the
meta-learning rate cut 3x (1e-4), as the 1e-4 continuation before it gained on validation where
3e-4 had stopped gaining.

Outcome: level with its start: on ``char_lm_validation_wide`` the exports at outer steps 100-400
are 1.16 each over tuned AdamW + cosine, as the start is, so by the rule written before the run
the start stays the specialist (``results/char_lm_specialist_long/validation_wide/``).

    lopt-meta-train --config=experiments/char_lm_specialist_wide_lower_lr --workdir=runs/wide_low
"""

from meta_train.configs.experiments import char_lm_specialist_wide


def get_config():
    c = char_lm_specialist_wide.get_config()
    c.init_from = "results/char_lm_specialist_long/export_wide_step_400"
    c.meta_opt.learning_rate = 1e-4
    c.outer_steps = 400
    return c
