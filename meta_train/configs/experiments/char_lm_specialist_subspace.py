"""The specialist continued on a subspace of theta: PES perturbs, and the meta-optimizer moves,
only the per-tensor network's output biases ``b3`` (5 of the 1,989 meta-parameters: one shift of
each output, the learned step factor among them, for every tensor of every task), with
perturbations of 0.2 instead of 0.01. At the specialist, estimates over all of theta agree with
each other no better than noise; over ``b3`` at sigma 0.2 they do
(``benchmarks/estimate_agreement.py --trained_leaves b3 --sigma 0.2``). Everything else is the
specialist's recipe.

Outcome: pending.

    lopt-meta-train --config=experiments/char_lm_specialist_subspace --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.continued(outer_steps=240)
    c.trained_leaves = "b3"
    c.sigma = 0.2
    c.meta_opt.learning_rate = 1e-3
    c.export_every = 80
    c.checkpoint_every = 40
    return c
