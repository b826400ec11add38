"""``scale_free_v4``'s recipe: ``scale_free_rel`` started from the better hand-designed rule,
``muon_rel_mup`` (relative Muon, zero-initialised matrices read as muP readouts and stepped
``fan_in`` times larger), with a lower meta-LR (5e-4: ``scale_free_rel``'s best exports were
its early ones, at 300-600 steps, and later ones drifted away from the start on autoencoders).
    lopt-meta-train --config=scale_free_mup --workdir=runs/scale_free_mup
"""

from meta_train.configs import scale_free_rel


def get_config():
    c = scale_free_rel.get_config()
    c.lopt.config = dict(c.lopt.config, zero_init="fan_in")
    c.meta_opt.learning_rate = 5e-4
    return c
