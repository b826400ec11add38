"""``experiments/char_lm_specialist_wide`` continued from its chosen snapshot on a zoo with depth 3
as well (``char_lm_deep``: depths 1-3, widths 16-64, sequence lengths 16 / 32) and twice the
population (4 task groups x 8 antithetic pairs per outer step, against 2 x 8), chosen on a
validation suite with a depth-3 member (``char_lm_validation_deep``). Depth 3 is the one held-out
size no zoo before it reached; the doubled population halves the variance of each meta-gradient
at twice the cost of an outer step.

Outcome: stopped at outer step 300 (55 minutes with other work beside it; a draw of depth-3,
width-64 members took up to 30 s per outer step). On ``char_lm_validation_deep`` its exports
scored 1.14, 1.13 and 1.10 at steps 100-300, against 1.17 for its start, falling on all members
but the depth-3 one (1.25, 1.22, 1.21 against 1.22): not shipped
(``results/char_lm_specialist_long/validation_deep/``).

    lopt-meta-train --config=experiments/char_lm_specialist_deep --workdir=runs/char_lm_deep
"""

from meta_train.configs.experiments import char_lm_specialist_wide


def get_config():
    c = char_lm_specialist_wide.get_config()
    c.init_from = "results/char_lm_specialist_long/export_wide_step_400"
    c.zoo = "char_lm_deep"
    c.num_groups = 4
    c.outer_steps = 600
    c.export_every = 100
    return c
