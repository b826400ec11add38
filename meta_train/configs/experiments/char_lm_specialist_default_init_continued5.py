"""``experiments/char_lm_specialist_default_init_continued4`` continued from its step 1,600 (4,800
counting from the chain's start, ``export_default_init_step_4800``, shipped as
``char_lm_specialist_v1``) for 2,400 more outer steps, an export every 400, everything else the
same: over the previous run the median on ``char_lm_validation_wide`` (6 seeds) rose at every
export (1.34 -> 1.39) and on ``char_lm_heldout`` the specialist rose 1.33x -> 1.39x tuned AdamW +
cosine per 1,600 outer steps; this run asks whether the rise carries on to the 1.5x the family's
goal asks for.

Outcome: 2,400 outer steps in 3,582 s by its time split (2,412 outer steps/hour; evaluations
and tests beside part of it). On ``char_lm_validation_wide`` (6 seeds, paired with step 4,800) its
exports at steps 400-2,400 scored 1.38, 1.41, 1.42, 1.39, 1.43, 1.43 against 1.39 (unrounded
1.3752, 1.4052, 1.4170, 1.3933, 1.4333, 1.4333, 1.3851), but no paired final training loss was
lower than step 4,800's beyond 2 standard errors (the last two: -0.003 ± 0.002 on two members,
level on the third; their speedups higher by 0.05-0.07 beyond 2 standard errors on two). By its
rule (``results/char_lm_specialist_long/choice_rule_default_init_continued5.md``) none was
eligible: the specialist stays ``export_default_init_step_4800``. The constant meta-step had
reached a plateau; its last export is kept (``export_default_init_step_7200``) as the start of
``char_lm_specialist_default_init_anneal``. Trained 3,000 steps (twice the longest episode)
on the same suite, that export ends above step 4,800 beyond 2 standard errors on every member
(``results/char_lm_specialist_long/validation_long_horizon/``): what the plateau's steps traded
for the suite's lengths was lost beyond them.

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_continued5 --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued4


def get_config():
    c = char_lm_specialist_default_init_continued4.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_4800"
    c.outer_steps = 2400
    c.export_every = 400
    return c
