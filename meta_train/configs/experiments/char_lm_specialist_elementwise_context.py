"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot (step 200)
with the per-parameter network also reading its tensor's context: the per-tensor network's last
hidden layer (32 units) enters the per-parameter network's hidden layer through ``W_ec`` (32 x 8,
``elementwise_context=True``), zero at the start, so the run starts exactly at the specialist.
The per-parameter term could so far see only its own element's features, the fraction done and
the Muon flag; the tensor's statistics, shape, tag and loss features now reach it too. Everything
else is that run's recipe (zoo ``char_lm_wide``, 2 task groups x 8 pairs, meta-LR 3e-4).

Outcome: on ``char_lm_validation_wide`` its exports scored 1.16 at outer steps 100, 200, 300 and
400 against 1.18 for its start (``results/char_lm_specialist_long/validation_continued``): not
shipped (choice rule ``results/char_lm_specialist_long/choice_rule_elementwise_context.md``). Like
every continuation of that snapshot, it lost the start's gain on ``s16_w24_d1_b8`` (1.18 -> 1.12)
at its first export. 400 outer steps in 48 minutes, another run and evaluations beside it.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise_context --workdir=runs/ctx
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.continued(outer_steps=400)
    c.lopt.config = dict(c.lopt.config, elementwise_context=True)
    return c
