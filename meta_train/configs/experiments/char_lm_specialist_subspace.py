"""The specialist continued on a subspace of theta: PES perturbs, and the meta-optimizer moves,
only the per-tensor network's output biases ``b3`` (5 of the 1,989 meta-parameters: one shift of
each output, the learned step factor among them, for every tensor of every task), with
perturbations of 0.2 instead of 0.01. At the specialist, estimates over all of theta agree with
each other no better than noise; over ``b3`` at sigma 0.2 they do
(``benchmarks/estimate_agreement.py --trained_leaves b3 --sigma 0.2``). Everything else is the
specialist's recipe.

Outcome: ``b3`` moved steadily (the learned log step o_s -0.05, the raw-gradient mixing o_grad
+0.10 by step 240) and validation fell at every export: 1.13, 1.12, 1.12 on
``char_lm_validation_wide`` at outer steps 80, 160, 240 against 1.18 for the start, every
member's final loss a little higher (``results/char_lm_specialist_long/validation_subspace/``):
not shipped. The estimate here is signal, not noise, so what the zoo's meta-loss asks for is not
what the validation speedup rewards. 240 outer steps in 955 s, an evaluation beside it.

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
