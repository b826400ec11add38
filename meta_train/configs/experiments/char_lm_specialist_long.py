"""``char_lm_specialist`` continued from its chosen snapshot with episodes at the evaluation
horizon: log-uniform in 300..1,500 steps (the held-out family members train 1,000-1,500 steps).

    lopt-meta-train --config=experiments/char_lm_specialist_long --workdir=runs/char_lm_long
"""

from meta_train.configs import char_lm_specialist


def get_config():
    c = char_lm_specialist.get_config()
    c.init_from = "results/char_lm_specialist/export_step_200"
    c.episode.min_length = 300
    c.episode.max_length = 1500
    c.outer_steps = 800
    c.export_every = 100
    return c
