"""``scale_free_capped`` (``scale_free_late28`` continued from ``scale_free_v7``, capped mixing)
with a learned per-tensor agreement gate (``agreement_gate=0.1``): the network gets a sixth output
``o_k`` and the features ``cos(g_t, m_{t-1})`` and ``log r``; after each step
``log r += 0.1 tanh(o_k) cos(g_t, m_{t-1})`` (``learned_opt.ScaleFreeLOpt``). v7's theta is
padded with zeros for the new inputs and output (``meta_params_from``), so the run starts exactly
at v7.

Why: a fixed agreement rate lifts the ill-conditioned quadratics (validation 1.6 -> 3.7-6.6x the
initial rule) but costs the MLPs and autoencoders, whose gradients agree with the momentum early
or turn against it (eval/results/validation_scale_free_agreement/). A learned rate can follow the
agreement where it pays and ignore it elsewhere.
    lopt-meta-train --config=scale_free_gate --workdir=runs/scale_free_gate
"""

from meta_train.configs import scale_free_capped


def get_config():
    c = scale_free_capped.get_config()
    c.lopt.config = dict(c.lopt.config, agreement_gate=0.1)
    c.outer_steps = 1500
    return c
