"""A diagnostic, not a candidate: ``experiments/char_lm_specialist_subspace_full_es`` (whole
1,000-step episodes, ``late_weight=10``, ES on the output biases ``b3`` alone at sigma 0.2,
meta-LR 3e-3, 30 outer steps) with the zoo replaced by the validation suite's own sizes
(``char_lm_validation_members``: the three ``char_lm_validation_wide`` tasks, fresh seeds, no
reparameterisation). Every run from the specialist fell on ``char_lm_validation_wide``; this one
tells the two explanations apart. If its exports rise above the start there, the zoo misled the
earlier runs; if they fall as the zoo run's did (1.16, 1.14, 1.12), the smoothed meta-objective
itself points off the validation speedup. It trains on the validation tasks, so none of its
exports may be chosen on that suite or shipped.

Outcome: ``b3`` moved as in the zoo run except for ``o_a`` (by step 30: o_grad +0.08, o_adam
+0.05, o_ns +0.04, o_s -0.02, o_a -0.08) and on ``char_lm_validation_wide`` (2 seeds) the exports at
steps 10, 20, 30 scored 1.15, 1.15, 1.13 against 1.18 for the start
(``results/char_lm_specialist_long/validation_members_full_es/``): by its reading rule
(``reading_rule_members_full_es.md`` there), the fall does not need the zoo. Their final training
losses were level with the start's (within the seeds' spread). 30 outer steps of 32,000 inner
steps in about 15 minutes alone on 2 CPU cores (22 s per step; slower with an evaluation beside).

    lopt-meta-train --config=experiments/char_lm_specialist_members_full_es --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_subspace_full_es


def get_config():
    c = char_lm_specialist_subspace_full_es.get_config()
    c.zoo = "char_lm_validation_members"
    return c
