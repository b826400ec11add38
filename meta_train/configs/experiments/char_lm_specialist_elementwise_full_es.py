"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot (step 200)
with whole-episode ES: ``estimator="full_es"`` over episodes of exactly 1,000 inner steps, the
validation runs' length, the meta-loss weighted toward each episode's end (``late_weight=10``).
Every PES continuation before it (truncations of 25 steps in episodes of 300-1,500) lost
validation speedup while its meta-loss did not rise; this run measures the meta-objective the
validation suite measures, at 40x the inner steps per outer step of PES with truncation 25
(2 groups x 8 pairs x 2 x 1,000 against x 25). 100 outer steps, an export every 50.

Outcome: stopped at outer step 34 of 100 when its session ended (about 20-90 s per outer step
on 2 CPU cores, evaluations beside it; a step did not end within the stop's 20 s, so it resumes
from its step-30 checkpoint). No export of its rule's (steps 50, 100) exists yet. The step-30
state, exported by the same command with ``--config.outer_steps=30``, scored 1.16 on
``char_lm_validation_wide`` against 1.18 for its start, its final losses level with the start's
(32-wide member 1.960 against 1.954) (``results/char_lm_specialist_long/validation_full_es``):
not shipped; a first look, not a result (choice rule
``results/char_lm_specialist_long/choice_rule_elementwise_full_es.md``).

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise_full_es --workdir=runs/fes
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.continued(outer_steps=100)
    c.estimator = "full_es"
    c.episode.min_length = 1000
    c.episode.max_length = 1000
    c.late_weight = 10.0
    c.checkpoint_every = 10
    c.export_every = 50
    return c
