"""``scale_free_v4``'s recipe: ``scale_free_rel`` started exactly as ``muon_rel_mup``
(``zero_init="fan_in"``: zero-initialised matrices read as muP readouts), meta-LR 5e-4.

Outcome: ``scale_free_v4`` (export 600, output layer x0.25) 1.46x tuned AdamW + cosine on held-out
tasks, level with its initial rule (1.44x); its raw exports lost 4-6x on 28x28 tasks.
    lopt-meta-train --config=experiments/scale_free_mup --workdir=runs/scale_free_mup
"""

from meta_train.configs.experiments import scale_free_rel


def get_config():
    c = scale_free_rel.get_config()
    c.lopt.config = dict(c.lopt.config, zero_init="fan_in")
    c.meta_opt.learning_rate = 5e-4
    return c
