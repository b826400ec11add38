"""``experiments/char_lm_specialist_default_init_continued3`` continued from its step 2,000
(3,200 counting from the specialist it started from, ``export_default_init_step_3200``, the
specialist now) for 1,600 more outer steps, an export every 400, everything else the same: over
that run the median on ``char_lm_validation_wide`` (6 seeds) rose at every export
(1.28 -> 1.34), and this run asks where the rise stops.

Outcome: pending (the rule is
``results/char_lm_specialist_long/choice_rule_default_init_continued4.md``).

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_continued4 --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued3


def get_config():
    c = char_lm_specialist_default_init_continued3.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_3200"
    c.outer_steps = 1600
    return c
