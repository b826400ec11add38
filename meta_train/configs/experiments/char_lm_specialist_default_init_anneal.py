"""``experiments/char_lm_specialist_default_init_continued5`` continued from its step 2,400 (7,200
counting from the chain's start) for 1,000 outer steps with the meta-learning rate annealed: a
linear warmup over 50 meta-updates (the meta-optimizer's moments start afresh), then a cosine
decay from 3e-4 to 0, everything else the same. Over ``continued5`` the median on
``char_lm_validation_wide`` (6 seeds) stayed level with its start (1.38-1.42 against 1.39) and
every paired final loss was level: the constant meta-step had reached its noise floor, which a
decaying step lowers.

Outcome: 1,000 outer steps in 1,761 s by its time split (2,044 outer steps/hour; evaluations
and tests beside part of it). On ``char_lm_validation_wide`` (6 seeds, paired with step 4,800)
its exports at steps 250-1,000 scored 1.4333, 1.4333, 1.4251, 1.4130 against 1.3851 (its start,
step 7,200: 1.4333); only step 250 had final losses lower beyond 2 standard errors (on 2 members)
and higher on none, so its rule
(``results/char_lm_specialist_long/choice_rule_default_init_anneal.md``) chose it
(``export_default_init_step_7450``): the decay itself added nothing on validation. On
``char_lm_heldout`` it is 1.49x tuned AdamW + cosine and 1.70x its initial rule (step 4,800:
1.39x, 1.58x), but trained 3,000 steps its loss spikes mid-run and it is 0.98x, below step 4,800
on all 4 tasks. The check added then
(``results/char_lm_specialist_long/choice_rule_long_horizon.md``: ``char_lm_validation_wide`` at
3,000 steps, 3 seeds) shows the same on validation: steps 7,200, 7,450 and 8,200 end above step
4,800 beyond 2 standard errors on every member. Not shipped; the specialist stays
``char_lm_specialist_v1``.

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
