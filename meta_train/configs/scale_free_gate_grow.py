"""``scale_free_gate`` with the learned agreement rate applied only to strong agreement
(``agreement_mode="grow"``, ``agreement_threshold=0.5``): ``log r += 0.1 tanh(o_k) max(cos(g_t,
m_{t-1}) - 0.5, 0)``, 750 outer steps from ``scale_free_v7`` (padded).

Why: ``scale_free_gate`` learned a rate of about 0.01 on every tensor of every task, and the
symmetric rule then shrinks the steps of tensors whose gradients turn against the momentum (the
autoencoders, cos -0.3..-0.9): its exports lost the validation autoencoders (1.41 -> 0.21-0.40
the initial rule's speed) while the quadratic gained (1.60 -> 3.2-4.4). Here weak or negative
agreement changes nothing; what the network learns is how much strong agreement should grow
(or shrink) the step.
    lopt-meta-train --config=scale_free_gate_grow --workdir=runs/scale_free_gate_grow
"""

from meta_train.configs import scale_free_gate


def get_config():
    c = scale_free_gate.get_config()
    c.lopt.config = dict(c.lopt.config, agreement_mode="grow", agreement_threshold=0.5)
    c.outer_steps = 750
    return c
