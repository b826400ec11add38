"""``experiments/char_lm_specialist_subspace`` on the zoo without its reparameterised half
(``char_lm_wide_plain``): the subspace run moved the output biases consistently and fell on
validation at every export, and the estimates it followed were measured on reparameterised
draws, which no validation or held-out task is.

Outcome: ``b3`` moved much as on the whole zoo (o_grad +0.12, o_ns +0.05, o_s -0.02 by step
240), and validation fell a little more slowly: 1.16, 1.15, 1.12 on ``char_lm_validation_wide``
at outer steps 80, 160, 240 against 1.18 for the start
(``results/char_lm_specialist_long/validation_subspace_plain/``): not shipped. The
reparameterised draws are not what pulls the zoo's meta-loss away from validation. 240 outer
steps in 1,270 s, another run and evaluations beside it.

    lopt-meta-train --config=experiments/char_lm_specialist_subspace_plain --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_subspace


def get_config():
    c = char_lm_specialist_subspace.get_config()
    c.zoo = "char_lm_wide_plain"
    return c
