"""The default-init chain continued on its family with sequence length 64 as well (zoo
``char_lm_long_seq_default``: ``char_lm_wide_default`` with sequences 16 / 32 / 64), from the
specialist that ``experiments/char_lm_specialist_default_init_continued4``'s rule chose, 2,400
outer steps, an export every 400 (800 until its step 133, before any export), everything else the
same. No zoo of the chain has sampled a
sequence longer than 32, and the held-out task the specialist does worst on, with the widest
swings from snapshot to snapshot (0.85-1.25x tuned AdamW + cosine), is the sequence-64 one; the
choice suite ``char_lm_validation_wide_long_seq`` adds a sequence-64 member so that a rule can
see that length.

Outcome: running; its rule
(``results/char_lm_specialist_long/choice_rule_default_init_long_seq.md``) decides.

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
