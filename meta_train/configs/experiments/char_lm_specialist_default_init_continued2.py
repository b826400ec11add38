"""``experiments/char_lm_specialist_default_init_continued`` continued from its step 400 (800
counting from the specialist) for 400 more outer steps, everything else the same: the mean final
losses on ``char_lm_validation_wide`` fell at each of that chain's exports (6 seeds, paired with
the specialist), and this run asks whether they keep falling.

Outcome: running; chosen by
``results/char_lm_specialist_long/choice_rule_default_init_continued2.md``.

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_continued2 --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued


def get_config():
    c = char_lm_specialist_default_init_continued.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_800"
    return c
