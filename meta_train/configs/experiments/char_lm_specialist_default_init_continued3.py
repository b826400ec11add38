"""``experiments/char_lm_specialist_default_init_continued2`` continued from its step 400 (1,200
counting from the specialist) for 2,000 more outer steps, an export every 400, everything else
the same: over the chain's first 1,200 outer steps the median on ``char_lm_validation_wide``
(6 seeds) rose from 1.21 to 1.28 and every mean final loss fell below the specialist's, each
within about 2 standard errors; this run asks whether five times longer makes the gain clear.

Outcome: on ``char_lm_validation_wide`` (6 seeds, paired with the specialist) its exports at
steps 400-2,000 scored 1.28, 1.29, 1.31, 1.33, 1.34 against 1.21, the mean final losses lower
than the specialist's beyond 2 standard errors on every member from step 1,200 (step 2,000:
-0.027, -0.019, -0.020). By its rule
(``results/char_lm_specialist_long/choice_rule_default_init_continued3.md``) step 2,000 was
chosen and shipped as the specialist (``export_default_init_step_3200``): on ``char_lm_heldout``
1.33x tuned AdamW + cosine and 1.52x its initial rule. 2,000 outer steps in 2,801 s alone on 2
CPU cores (2,570 outer steps/hour).

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_continued3 --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued


def get_config():
    c = char_lm_specialist_default_init_continued.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_1200"
    c.outer_steps = 2000
    c.export_every = 400
    return c
