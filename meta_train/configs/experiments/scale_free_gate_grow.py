"""``scale_free_gate`` with the learned rate applied only to strong agreement
(``agreement_mode="grow"``, ``agreement_threshold=0.5``), 750 outer steps.

Outcome: not shipped: ``validation_scale`` medians 1.055-1.060 against v7's 1.134, worst task
0.47-0.49 (``results/validation_scale_free_gate/choice_rule_grow.md``).
    lopt-meta-train --config=experiments/scale_free_gate_grow --workdir=runs/scale_free_gate_grow
"""

from meta_train.configs.experiments import scale_free_gate


def get_config():
    c = scale_free_gate.get_config()
    c.lopt.config = dict(c.lopt.config, agreement_mode="grow", agreement_threshold=0.5)
    c.outer_steps = 750
    return c
