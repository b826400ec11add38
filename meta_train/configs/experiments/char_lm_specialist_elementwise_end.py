"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot (step 200)
with a meta-loss on the end of episodes as long as the validation runs: episodes of 700-1,500
inner steps (were 300-1,500) and ``late_weight=10`` (inner step ``t`` of ``L`` weighs
``11 ((t + 1) / L)^10``: 69% of the weight on the last tenth of an episode, 94% on its last
quarter). Every continuation before it lost validation speedup (steps to reach tuned AdamW +
cosine's final loss at 1,000 steps) while its meta-loss, over the whole of shorter episodes, did
not rise; this run asks whether a meta-loss close to that final loss stops the fall. Everything
else is that run's recipe; 200 outer steps.

Outcome: see ``results/char_lm_specialist_long/run.md`` (choice rule
``results/char_lm_specialist_long/choice_rule_elementwise_end.md``).

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise_end --workdir=runs/end
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.continued(outer_steps=200)
    c.episode.min_length = 700
    c.late_weight = 10.0
    return c
