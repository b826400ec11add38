"""``experiments/char_lm_specialist_default_init_continued5`` continued from its step 2,400 (7,200
counting from the chain's start) for 1,000 outer steps with the meta-learning rate annealed: a
linear warmup over 50 meta-updates (the meta-optimizer's moments start afresh), then a cosine
decay from 3e-4 to 0, everything else the same. Over ``continued5`` the median on
``char_lm_validation_wide`` (6 seeds) stayed level with its start (1.38-1.42 against 1.39) and
every paired final loss was level: the constant meta-step had reached its noise floor, which a
decaying step lowers.

Outcome: not yet run.

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_anneal --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued5


def get_config():
    c = char_lm_specialist_default_init_continued5.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_7200"
    c.outer_steps = 1000
    c.export_every = 250
    c.meta_opt.schedule = "cosine"
    c.meta_opt.warmup_steps = 50
    return c
