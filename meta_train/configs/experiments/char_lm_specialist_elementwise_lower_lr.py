"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot at
meta-learning rate 1e-4: at 3e-4 its validation score peaked at outer step 200 and fell after, as
the per-tensor runs' did before a 1e-4 continuation held their peak.

Outcome: level with its start on ``char_lm_validation_wide`` (1.17, 1.17, 1.16 at outer steps
100-300, against 1.18): not shipped (``results/char_lm_specialist_long/validation_elementwise/``).
300 outer steps in 16 minutes, evaluations beside it.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise_lower_lr --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.continued(outer_steps=300)
    c.meta_opt.learning_rate = 1e-4
    return c
