"""A specialist: the recommended optimizer meta-trained further on one model family.

The recipe for "meta-train an optimizer for your own model family": start from the recommended
optimizer (``init_from="scale_free_v7"``, same architecture and settings), meta-train it with PES
on a zoo of that family only (here ``char_lm``: char transformers of widths 16-32, depths 1-2,
sequence lengths 16 / 32, batches 8 / 16, half of them with random per-tensor reparameterisation),
choose the snapshot on members of the family (suite ``char_lm_validation``), and judge it on sizes
of the family it never saw, trained longer than any episode (suite ``char_lm_heldout``). Episodes
are log-uniform in 60..300 steps with truncation 25; the meta-loss is the log normalised loss
weighted toward each episode's end (``late_weight=1``).
    lopt-meta-train --config=char_lm_specialist --workdir=runs/char_lm_specialist
For your own family: register a ``GridFamily`` of your task class and a ``Zoo`` of it in
``tasks/registry.py``, and set ``--config.zoo=NAME``.
"""

from meta_train import config as config_lib


def get_config():
    c = config_lib.base()
    c.zoo = "char_lm"
    c.lopt.architecture = "scale_free"
    c.lopt.config = dict(
        relative=True, zero_init="fan_in", log_scale_bound=4.0, alpha_bound=1.0, mixing_fan_cap=64.0
    )
    c.init_from = "scale_free_v7"
    c.truncation_length = 25
    c.episode.min_length = 60
    c.episode.max_length = 300
    c.log_loss = True
    c.late_weight = 1.0
    c.num_groups = 2
    c.pairs_per_group = 8
    c.group_resample_every = 25
    c.share_programs = True
    c.meta_opt.learning_rate = 1e-3
    c.outer_steps = 1000
    c.checkpoint_every = 25
    c.export_every = 50
    return c
