"""``experiments/char_lm_specialist_default_init_continued`` continued from its step 400 (800
counting from the specialist) for 400 more outer steps, everything else the same: the mean final
losses on ``char_lm_validation_wide`` fell at each of that chain's exports (6 seeds, paired with
the specialist), and this run asks whether they keep falling.

Outcome: on ``char_lm_validation_wide`` (6 seeds, paired with the specialist) its exports at
steps 200 and 400 scored 1.27 and 1.28 against 1.21; mean final losses below the specialist's on
every member at both (step 400: -0.007, -0.008, -0.009, each within 2 standard errors; step 200:
-0.010 beyond 2 on the 64-wide member). By its rule
(``results/char_lm_specialist_long/choice_rule_default_init_continued2.md``) step 400 was chosen
and, lower nowhere beyond 2 standard errors, not shipped (``validation_default_init/``). Kept:
``export_default_init_step_1000`` and ``_1200``. 400 outer steps in 862 s, an evaluation beside
part of it.

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_continued2 --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued


def get_config():
    c = char_lm_specialist_default_init_continued.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_800"
    return c
