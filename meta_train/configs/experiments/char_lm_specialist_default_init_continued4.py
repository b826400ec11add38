"""``experiments/char_lm_specialist_default_init_continued3`` continued from its step 2,000 (3,200
counting from the specialist it started from, ``export_default_init_step_3200``, the specialist when
it started) for 1,600 more outer steps, an export every 400, everything else the same: over that run
the median on ``char_lm_validation_wide`` (6 seeds) rose at every export (1.28 -> 1.34), and this
run asks where the rise stops.

Outcome: stopped at step 810 of 1,600 (to leave the session time for its checks). On
``char_lm_validation_wide`` (6 seeds, paired with step 3,200) its exports at steps 400 and 800
scored 1.34 and 1.36 against 1.34 (unrounded 1.3370, 1.3635, 1.3445); at step 800 the 64-wide
member's mean final loss lower beyond 2 standard errors, the others level. By its rule
(``results/char_lm_specialist_long/choice_rule_default_init_continued4.md``, threshold written as
1.34 + 0.02) step 800 was chosen and shipped as the specialist (``export_default_init_step_4000``):
on ``char_lm_heldout`` 1.34x tuned AdamW + cosine and 1.56x its initial rule, its 56-wide task back
at 0.88 (step 3,200: 1.25).

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_continued4 --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued3


def get_config():
    c = char_lm_specialist_default_init_continued3.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_3200"
    c.outer_steps = 1600
    return c
