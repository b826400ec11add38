"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot (step 200)
with whole-episode ES: ``estimator="full_es"`` over episodes of exactly 1,000 inner steps, the
validation runs' length, the meta-loss weighted toward each episode's end (``late_weight=10``).
Every PES continuation before it (truncations of 25 steps in episodes of 300-1,500) lost
validation speedup while its meta-loss did not rise; this run measures the meta-objective the
validation suite measures, at 40x the inner steps per outer step of PES with truncation 25
(2 groups x 8 pairs x 2 x 1,000 against x 25). 100 outer steps, an export every 50.

Outcome: stopped at outer step 34 of 100 when its first session ended (20-90 s per outer step on
2 CPU cores). Continued on another machine from its step-30 state
(``results/char_lm_specialist_long/export_full_es_step_30``, ``--config.init_from=``,
``--config.outer_steps=70``): 70 steps in 2,775 s. On ``char_lm_validation_wide`` the rule's
exports score 1.16 (step 50) and 1.12 (step 100) against 1.18 for its start, the final losses a
little higher than the start's at each (32-wide member 1.954, 1.965, 1.970): not shipped
(``results/char_lm_specialist_long/validation_full_es_continued``; choice rule
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
