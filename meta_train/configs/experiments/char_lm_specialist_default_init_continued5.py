"""``experiments/char_lm_specialist_default_init_continued4`` continued from its step 1,600 (4,800
counting from the chain's start, ``export_default_init_step_4800``, shipped as
``char_lm_specialist_v1``) for 2,400 more outer steps, an export every 400, everything else the
same: over the previous run the median on ``char_lm_validation_wide`` (6 seeds) rose at every
export (1.34 -> 1.39) and on ``char_lm_heldout`` the specialist rose 1.33x -> 1.39x tuned AdamW +
cosine per 1,600 outer steps; this run asks whether the rise carries on to the 1.5x the family's
goal asks for.

Outcome: not yet run.

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_continued5 --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued4


def get_config():
    c = char_lm_specialist_default_init_continued4.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_4800"
    c.outer_steps = 2400
    c.export_every = 400
    return c
