"""``experiments/char_lm_specialist_subspace`` with perturbations of 0.05 instead of 0.2: ES
follows the gradient of the meta-loss smoothed at the perturbations' scale, and a wide smoothing
favours settings that are safe under large changes over the sharp optimum. At 0.05 the
estimates on ``b3`` still agree, less than at 0.2 (mean cosines 0.08 and 0.27 on the two groups;
``benchmarks/estimate_agreement.py --trained_leaves b3 --sigma 0.05``).

Outcome: ``b3`` moved less and the other way (o_grad -0.03, o_adam -0.03, alpha +0.02 by step
240), and validation fell less: 1.16 at outer steps 80, 160 and 240 on
``char_lm_validation_wide`` against 1.18 for the start
(``results/char_lm_specialist_long/validation_subspace_small_sigma/``): not shipped. 240 outer
steps in 1,121 s, evaluations beside it.

    lopt-meta-train --config=experiments/char_lm_specialist_subspace_small_sigma --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_subspace


def get_config():
    c = char_lm_specialist_subspace.get_config()
    c.sigma = 0.05
    return c
