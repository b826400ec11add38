"""``experiments/char_lm_specialist_subspace`` (PES perturbing and moving only the output biases
``b3``, sigma 0.2) with the meta-objective of the validation suite instead of the zoo's
truncations: whole-episode ES (``full_es``) over episodes of exactly 1,000 inner steps, weighted
toward each episode's end (``late_weight=10``), as
``experiments/char_lm_specialist_elementwise_full_es`` did over all of theta at sigma 0.01, where
its estimates were noise. 30 outer steps at
meta-learning rate 3e-3 (about the subspace PES run's drift), an export every 10.

Outcome: ``b3`` moved less than under PES (o_grad +0.07, alpha +0.05, o_adam +0.05 by step 30)
and validation fell all the same: 1.16, 1.14, 1.12 on ``char_lm_validation_wide`` at outer
steps 10, 20, 30 against 1.18 for the start
(``results/char_lm_specialist_long/validation_subspace_full_es/``): not shipped. 30 outer steps
in 1,776 s (32,000 inner steps each), other runs and evaluations beside it.

    lopt-meta-train --config=experiments/char_lm_specialist_subspace_full_es --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise_full_es


def get_config():
    c = char_lm_specialist_elementwise_full_es.get_config()
    c.trained_leaves, c.sigma = "b3", 0.2  # as experiments/char_lm_specialist_subspace
    c.meta_opt.learning_rate = 3e-3
    c.outer_steps, c.checkpoint_every, c.export_every = 30, 5, 10
    return c
