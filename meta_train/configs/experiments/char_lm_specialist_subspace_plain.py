"""``experiments/char_lm_specialist_subspace`` on the zoo without its reparameterised half
(``char_lm_wide_plain``): the subspace run moved the output biases consistently and fell on
validation at every export, and the estimates it followed were measured on reparameterised
draws, which no validation or held-out task is.

Outcome: pending.

    lopt-meta-train --config=experiments/char_lm_specialist_subspace_plain --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_subspace


def get_config():
    c = char_lm_specialist_subspace.get_config()
    c.zoo = "char_lm_wide_plain"
    return c
