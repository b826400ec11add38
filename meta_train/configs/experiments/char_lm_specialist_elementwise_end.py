"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot (step 200)
with a meta-loss on the end of episodes as long as the validation runs: episodes of 700-1,500
inner steps (were 300-1,500) and ``late_weight=10`` (inner step ``t`` of ``L`` weighs
``11 ((t + 1) / L)^10``: 69% of the weight on the last tenth of an episode, 94% on its last
quarter). Every continuation before it lost validation speedup (steps to reach tuned AdamW +
cosine's final loss at 1,000 steps) while its meta-loss, over the whole of shorter episodes, did
not rise; this run asks whether a meta-loss close to that final loss stops the fall. Everything
else is that run's recipe; 200 outer steps.

Outcome: on ``char_lm_validation_wide`` its exports scored 1.17 and 1.16 at outer steps 100
and 200 against 1.18 for its start (``results/char_lm_specialist_long/validation_end``): not
shipped (choice rule ``results/char_lm_specialist_long/choice_rule_elementwise_end.md``). Its
members' final training losses stayed level at step 100 (32-wide member 1.955 against 1.954)
and rose a little at step 200 (1.965), slower than the agreement-gate run's (1.992 at step 200):
the end-weighted meta-loss slowed the fall but did not turn it into a gain. 200 outer steps in
829 s, tests and evaluations beside it.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise_end --workdir=runs/end
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.continued(outer_steps=200)
    c.episode.min_length = 700
    c.late_weight = 10.0
    return c
