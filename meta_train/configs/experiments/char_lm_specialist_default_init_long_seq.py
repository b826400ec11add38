"""The default-init chain continued on its family with sequence length 64 as well (zoo
``char_lm_long_seq_default``: ``char_lm_wide_default`` with sequences 16 / 32 / 64), from the
specialist that ``experiments/char_lm_specialist_default_init_continued4``'s rule chose, 2,400
outer steps, an export every 400 (800 until its step 133, before any export), everything else the
same. No zoo of the chain has sampled a sequence longer than 32, and the held-out task the
specialist does worst on, with the widest swings from snapshot to snapshot (0.85-1.25x tuned AdamW
+ cosine), is the sequence-64 one; the choice suite ``char_lm_validation_wide_long_seq`` adds a
sequence-64 member so that a rule can see that length.

Outcome: stopped at step 1,607 of 2,400 (the session's end). On
``char_lm_validation_wide_long_seq`` (6 seeds, paired with its start, which scores 1.32 there) its
exports at steps 400, 800, 1,200 and 1,600 scored 1.31, 1.32, 1.33, 1.30 (unrounded 1.3138,
1.3189, 1.3297, 1.3033 against 1.3175): none reached the rule's +0.02
(``results/char_lm_specialist_long/choice_rule_default_init_long_seq.md``), so the specialist
stays ``export_default_init_step_4800``. The sequence-64 member rose (1.16 -> 1.25 at step
1,600, final loss lower beyond 2 standard errors, as on the 32-wide member) while the 64-wide one
fell (1.39 -> 1.35). 1,474 timed outer steps in 4,473 s (1,186 outer steps/hour, half the
previous zoo's: sequence-64, width-64 draws cost up to 10x a small draw; tests and evaluations
beside part of it). Its step 1,600 is kept as ``export_long_seq_step_1600`` to continue from.

    lopt-meta-train --config=experiments/char_lm_specialist_default_init_long_seq --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_default_init_continued4


def get_config():
    c = char_lm_specialist_default_init_continued4.get_config()
    c.init_from = "results/char_lm_specialist_long/export_default_init_step_4800"
    c.zoo = "char_lm_long_seq_default"
    c.outer_steps = 2400
    c.export_every = 400
    return c
