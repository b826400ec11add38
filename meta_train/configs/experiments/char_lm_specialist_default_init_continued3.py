"""``experiments/char_lm_specialist_default_init_continued2`` continued from its step 400 (1,200
counting from the specialist) for 2,000 more outer steps, an export every 400, everything else
the same: over the chain's first 1,200 outer steps the median on ``char_lm_validation_wide``
(6 seeds) rose from 1.21 to 1.28 and every mean final loss fell below the specialist's, each
within about 2 standard errors; this run asks whether five times longer makes the gain clear.

Outcome: pending (the rule is
``results/char_lm_specialist_long/choice_rule_default_init_continued3.md``).

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_continued3 --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued


def get_config():
    c = char_lm_specialist_default_init_continued.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_1200"
    c.outer_steps = 2000
    c.export_every = 400
    return c
