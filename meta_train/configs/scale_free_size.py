"""The recipe tried for a ``scale_free_v5`` (not shipped: no export passed the validation rule,
README): ``scale_free_mup`` (started exactly as ``muon_rel_mup``) with
size-free features (``ScaleFreeLOpt(size_free=True)``: fans and sizes clamped to the zoo's
largest, gradient statistics relative to sqrt(v)) over ``broad_synthetic`` (``broad`` with twice
the weight on quadratics and linear regression).

Why: ``scale_free_v4``'s raw exports lost 4-6x on 28x28 tasks in validation (corrections learned
on 8x8 / 16x16 inputs did not carry to 784 inputs) and had to be shrunk to x0.25, which also
shrank the 1.4-2.6x it had learned on quadratics; the two tasks below 0.5x on ``heldout`` are a
quadratic and a linear regression.
    lopt-meta-train --config=scale_free_size --workdir=runs/scale_free_size
"""

from meta_train.configs import scale_free_mup


def get_config():
    c = scale_free_mup.get_config()
    c.lopt.config = dict(c.lopt.config, size_free=True)
    c.zoo = "broad_synthetic"
    return c
