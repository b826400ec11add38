"""The recommended optimizer's recipe (``scale_free_v7``; ``scale_free_v6`` before its cap).

``ScaleFreeLOpt(relative=True, zero_init="fan_in")``, whose initial theta is the hand-designed
``muon_rel_mup`` (relative Muon with muP readouts, Adam elsewhere, warmup + cosine), meta-trained
with PES over the ``broad_28`` zoo (MLPs at 8x8..28x28, muP and reparameterised MLPs,
autoencoders, quadratics, linear regression, 8x8 conv nets, small char transformers): truncation
50, episodes log-uniform in 200..2,000 steps, the log meta-loss weighted toward each episode's end
(``late_weight=1``), 4 task groups x 8 antithetic pairs, meta-LR 5e-4, continued from
``scale_free_v5`` (``init_from``; ``--config.init_from=`` starts at ``muon_rel_mup`` instead).
``scale_free_v6`` is this run's export at step 600 with the network's output layer x0.5;
``scale_free_v7`` is v6 with ``mixing_fan_cap=64``. How the recipe was arrived at:
``experiments/scale_free_late28`` and its chain.
    lopt-meta-train --config=scale_free --workdir=runs/scale_free
"""

from meta_train import config as config_lib


def get_config():
    c = config_lib.base()
    c.zoo = "broad_28"
    c.lopt.architecture = "scale_free"
    # every setting stated: the run meta-trains without the cap that v7 adds afterwards
    c.lopt.config = dict(
        relative=True, zero_init="fan_in", log_scale_bound=4.0, alpha_bound=1.0, mixing_fan_cap=0.0
    )
    c.init_from = "scale_free_v5"
    c.truncation_length = 50
    c.episode.min_length = 200
    c.episode.max_length = 2000
    c.log_loss = True
    c.late_weight = 1.0
    c.num_groups = 4
    c.pairs_per_group = 8
    c.group_resample_every = 50
    c.meta_opt.learning_rate = 5e-4
    c.outer_steps = 1500
    c.checkpoint_every = 50
    c.export_every = 150
    c.eval.update(config_lib.EMBEDDED_EVAL, num_tasks=0)  # recorded in its runs; not run
    return c
