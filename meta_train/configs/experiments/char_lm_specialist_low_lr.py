"""``experiments/char_lm_specialist_long`` continued from its chosen snapshot with a 3x smaller
meta-learning rate (3e-4): both earlier specialist runs peaked on ``char_lm_validation`` at outer
step 200 and fell behind after it, which a meta-gradient dominated by PES noise would explain.

Outcome: the fall came later and slower (``char_lm_validation``, median over tuned AdamW + cosine:
1.12, 1.14, 1.08, 1.04 at outer steps 200-800, against 1.07 for the start); step 200 was chosen
(step 400 was within the rule's 0.02 tie margin) (``results/char_lm_specialist_long/``).

    lopt-meta-train --config=experiments/char_lm_specialist_low_lr --workdir=runs/char_lm_low_lr
"""

from meta_train.configs.experiments import char_lm_specialist_long


def get_config():
    c = char_lm_specialist_long.get_config()
    c.init_from = "results/char_lm_specialist_long/export_step_200"
    c.meta_opt.learning_rate = 3e-4
    return c
