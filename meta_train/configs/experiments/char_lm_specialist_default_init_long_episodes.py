"""``experiments/char_lm_specialist_default_init_continued4``'s recipe continued from its step
1,600 (``export_default_init_step_4800``, shipped as ``char_lm_specialist_v1``) with episodes of
300-3,000 steps instead of 300-1,500, everything else the same: past step 4,800 the chain on
1,500-step episodes got faster at the suite's lengths and worse at twice them (loss spikes, every
validation member's final loss higher at 3,000 steps), and this run asks whether meta-training on
runs that long keeps the gain there.

Outcome: stopped at step 402 of 2,400 (the session's end; exports every 200 from step 79 on,
amended before any export existed). On ``char_lm_validation_wide`` (6 seeds, paired with step
4,800) steps 200 and 400 scored 1.3894 and 1.3851 against 1.3851, final losses level (step 400
higher on the 64-wide member); trained 3,000 steps (3 seeds), 1.26 and 1.17 over the initial
rule against 1.26, step 400 higher on all 3 members. Neither eligible by its rule
(``results/char_lm_specialist_long/choice_rule_default_init_long_episodes.md``); step 400 kept
(``export_long_episodes_step_400``) to continue from.

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_long_episodes --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued4


def get_config():
    c = char_lm_specialist_default_init_continued4.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_4800"
    c.episode.max_length = 3000
    c.outer_steps = 2400
    c.export_every = 200
    return c
