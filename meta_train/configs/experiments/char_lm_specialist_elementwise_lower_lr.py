"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot at
meta-learning rate 1e-4: at 3e-4 its validation score peaked at outer step 200 and fell after, as
the per-tensor runs' did before a 1e-4 continuation held their peak.

Outcome: running.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise_lower_lr --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.get_config()
    c.init_from = "results/char_lm_specialist_long/export_elementwise_step_200"
    c.meta_opt.learning_rate = 1e-4
    c.outer_steps = 300
    return c
