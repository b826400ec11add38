"""``experiments/char_lm_specialist_default_init_continued4``'s recipe continued from its step
1,600 (``export_default_init_step_4800``, shipped as ``char_lm_specialist_v1``) with episodes of
300-3,000 steps instead of 300-1,500, everything else the same: past step 4,800 the chain on
1,500-step episodes got faster at the suite's lengths and worse at twice them (loss spikes, every
validation member's final loss higher at 3,000 steps), and this run asks whether meta-training on
runs that long keeps the gain there.

Outcome: not yet run.

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
