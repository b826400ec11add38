"""``experiments/char_lm_specialist_default_init_continued3`` continued from its step 2,000 (3,200
counting from the specialist it started from, ``export_default_init_step_3200``, the specialist when
it started) for 1,600 more outer steps, an export every 400, everything else the same: over that run
the median on ``char_lm_validation_wide`` (6 seeds) rose at every export (1.28 -> 1.34), and this
run asks where the rise stops.

Outcome: stopped at step 810 (to leave a session time for its checks), then resumed from its
checkpoint to step 1,600. On ``char_lm_validation_wide`` (6 seeds, paired with step 3,200) its
exports at steps 400, 800, 1,200 and 1,600 scored 1.34, 1.36, 1.38, 1.39 against 1.34 (unrounded
1.3370, 1.3635, 1.3831, 1.3851, 1.3445), lower than step 3,200 beyond 2 standard errors on 1, 1,
2 and 1 members, higher on none. By its rule
(``results/char_lm_specialist_long/choice_rule_default_init_continued4.md``) step 1,600 was chosen
(``export_default_init_step_4800``; shipped as ``char_lm_specialist_v1``): on ``char_lm_heldout``
1.39x tuned AdamW + cosine (above it on all 4 tasks) and 1.58x its initial rule. Step 800, chosen
while the run was stopped, had been 1.34x with its 56-wide task at 0.88. After the resume: 775
outer steps in 1,119 s by its time split (2,493 outer steps/hour; tests beside part of it).

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_continued4 --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued3


def get_config():
    c = char_lm_specialist_default_init_continued3.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_3200"
    c.outer_steps = 1600
    return c
