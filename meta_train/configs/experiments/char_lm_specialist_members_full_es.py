"""A diagnostic, not a candidate: ``experiments/char_lm_specialist_subspace_full_es`` (whole
1,000-step episodes, ``late_weight=10``, ES on the output biases ``b3`` alone at sigma 0.2,
meta-LR 3e-3, 30 outer steps) with the zoo replaced by the validation suite's own sizes
(``char_lm_validation_members``: the three ``char_lm_validation_wide`` tasks, fresh seeds, no
reparameterisation). Every run from the specialist fell on ``char_lm_validation_wide``; this one
tells the two explanations apart. If its exports rise above the start there, the zoo misled the
earlier runs; if they fall as the zoo run's did (1.16, 1.14, 1.12), the smoothed meta-objective
itself points off the validation speedup. It trains on the validation tasks, so none of its
exports may be chosen on that suite or shipped.

Outcome: running; read by ``results/char_lm_specialist_long/reading_rule_members_full_es.md``.

    lopt-meta-train --config=experiments/char_lm_specialist_members_full_es --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_subspace_full_es


def get_config():
    c = char_lm_specialist_subspace_full_es.get_config()
    c.zoo = "char_lm_validation_members"
    return c
