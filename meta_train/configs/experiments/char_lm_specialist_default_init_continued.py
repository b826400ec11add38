"""``experiments/char_lm_specialist_default_init`` continued from its step 400 for 400 more outer
steps (a fresh meta-optimizer state), everything else the same. Its step 400 was the first
continuation of the specialist whose mean final training losses on ``char_lm_validation_wide``
(6 seeds, paired) were below the start's on all three tasks, though within 2 standard errors
(median 1.24 against 1.21); this run asks whether the gain grows.

Outcome: running; chosen by
``results/char_lm_specialist_long/choice_rule_default_init_continued.md``.

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_continued --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init


def get_config():
    c = char_lm_specialist_default_init.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_400"
    c.export_every = 200
    return c
