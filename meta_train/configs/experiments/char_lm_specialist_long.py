"""``char_lm_specialist`` continued from its chosen snapshot with episodes at the evaluation
horizon: log-uniform in 300..1,500 steps (the held-out family members train 1,000-1,500 steps).

Outcome: the export at outer step 200 was chosen on ``char_lm_validation`` (1.07 over tuned AdamW +
cosine, against 1.03 for the start); the later exports fell behind there again (0.86 at step 800).
On ``char_lm_heldout`` it is 1.19x tuned AdamW + cosine and 1.32x its initial rule
(``results/char_lm_specialist_long/``).

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
