"""muLO: muP MLPs of several widths (32..256) with the muP-mode MLP optimizer (Therien et al. 2024).

PES, truncation 50, like the published recipe; widths generalise thanks to the muP scaling.
"""

from meta_train.configs import small


def get_config():
    c = small.get_config()
    c.zoo = "mulo"
    c.lopt.config.mup = True
    c.num_groups = 8
    c.outer_steps = 20000
    c.meta_opt.learning_rate = 3e-4
    return c
