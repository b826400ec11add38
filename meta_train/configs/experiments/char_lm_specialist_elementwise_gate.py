"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot (step 200)
with a learned per-tensor agreement gate (``agreement_gate=0.1``): each tensor's step factor
``log r`` moves by ``kappa (cos(g_t, m_{t-1}) - c0)`` after every update, with ``kappa`` a
learned output of the per-tensor network, which also reads that cosine and ``log r`` as
features. A feature that tells tasks apart online, not tried on the specialist before: every
earlier continuation could only map the same statistics to a step, none could adapt a tensor's
step to how its gradients agree over time. The snapshot's theta is padded with zeros for the new
inputs and output, so the run starts exactly at the specialist; everything else is that run's
recipe.

Outcome: on ``char_lm_validation_wide`` its exports scored 1.18, 1.16, 0.82, 0.79 at outer
steps 100-400 against 1.18 for its start (``results/char_lm_specialist_long/validation_gate``):
not shipped (choice rule ``results/char_lm_specialist_long/choice_rule_elementwise_gate.md``).
The final training loss of every member rose at every export (the 32-wide one 1.954 at the
start, then 1.972, 1.992, 2.040, 2.061; tuned AdamW + cosine 1.986) while the zoo's meta-loss
did not rise: the gate learned what the meta-loss rewards and validation punishes. 400 outer
steps in 2,096 s, tests and evaluations beside it.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise_gate --workdir=runs/gate
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.continued(outer_steps=400)
    c.lopt.config = dict(c.lopt.config, agreement_gate=0.1)
    return c
