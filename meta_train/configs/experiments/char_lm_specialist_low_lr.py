"""``experiments/char_lm_specialist_long`` continued from its chosen snapshot with a 3x smaller
meta-learning rate (3e-4): both earlier specialist runs peaked on ``char_lm_validation`` at outer
step 200 and fell behind after it, which a meta-gradient dominated by PES noise would explain.

    lopt-meta-train --config=experiments/char_lm_specialist_low_lr --workdir=runs/char_lm_low_lr
"""

from meta_train.configs.experiments import char_lm_specialist_long


def get_config():
    c = char_lm_specialist_long.get_config()
    c.init_from = "results/char_lm_specialist_long/export_step_200"
    c.meta_opt.learning_rate = 3e-4
    return c
