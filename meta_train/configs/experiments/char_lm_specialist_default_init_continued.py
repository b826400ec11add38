"""``experiments/char_lm_specialist_default_init`` continued from its step 400 for 400 more outer
steps (a fresh meta-optimizer state), everything else the same. Its step 400 was the first
continuation of the specialist whose mean final training losses on ``char_lm_validation_wide``
(6 seeds, paired) were below the start's on all three tasks, though within 2 standard errors
(median 1.24 against 1.21); this run asks whether the gain grows.

Outcome: on ``char_lm_validation_wide`` (6 seeds, paired with the specialist) its exports at
steps 200 and 400 scored 1.27 and 1.25 against 1.21 (its start 1.24); mean final losses lower
than the specialist's on every task at step 200 (-0.006, -0.003, -0.005, each within 2 standard
errors) and on two at step 400 (-0.008, and -0.006 beyond 2 standard errors; +0.003 on the
64-wide member). By its rule
(``results/char_lm_specialist_long/choice_rule_default_init_continued.md``) step 200 was chosen
and, lower nowhere beyond 2 standard errors, not shipped (``validation_default_init/``). Kept:
``export_default_init_step_600`` and ``_800``. 400 outer steps in 590 s alone on 2 CPU cores
(2,443 outer steps/hour).

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_continued --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init


def get_config():
    c = char_lm_specialist_default_init.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_400"
    c.export_every = 200
    return c
