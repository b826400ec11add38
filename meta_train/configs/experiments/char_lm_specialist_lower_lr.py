"""``experiments/char_lm_specialist_low_lr`` continued from its chosen snapshot with the
meta-learning rate cut 3x again (1e-4): at 3e-4 the validation score rose for 200-400 outer steps
and fell after, later and more slowly than at 1e-3.

Outcome: no fall (``char_lm_validation``: 1.11, 1.15, 1.14, 1.14 at outer steps 200-800, against
1.12 for the start); step 400 was chosen. On ``char_lm_heldout``: 1.20x tuned AdamW + cosine and
1.33x its initial rule, level with the two runs before it (``results/char_lm_specialist_long/``).

    lopt-meta-train --config=experiments/char_lm_specialist_lower_lr --workdir=runs/char_lm_lower_lr
"""

from meta_train.configs.experiments import char_lm_specialist_low_lr


def get_config():
    c = char_lm_specialist_low_lr.get_config()
    c.init_from = "results/char_lm_specialist_long/export_low_lr_step_200"
    c.meta_opt.learning_rate = 1e-4
    return c
