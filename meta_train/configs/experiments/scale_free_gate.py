"""``scale_free_capped`` with a learned per-tensor agreement gate (``agreement_gate=0.1``; v7's
theta padded with zeros for the new inputs and output, so the run starts exactly at v7).

Outcome: not shipped: the gate learned a rate of about 0.01 everywhere; the quadratic gained (up
to 4.4x) while the autoencoders fell to 0.21-0.40x (``results/validation_scale_free_gate/``).
    lopt-meta-train --config=experiments/scale_free_gate --workdir=runs/scale_free_gate
"""

from meta_train.configs.experiments import scale_free_capped


def get_config():
    c = scale_free_capped.get_config()
    c.lopt.architecture = "scale_free_experimental"
    c.lopt.config = dict(c.lopt.config, agreement_gate=0.1)
    c.outer_steps = 1500
    return c
