"""The specialist continued by PES over all of theta, on its family as users instantiate it: zoo
``char_lm_wide_default`` (``char_lm_wide`` without its reparameterised half and without random
initial scales), meta-LR 3e-4 as the run that made the specialist, 400 outer steps, an export
every 100. On six validation seeds the continuations over ``char_lm_wide`` were below the start
(whole-episode ES over all of theta, PES on ``b3``), while whole-episode ES over the validation
sizes themselves (default initialisation, no reparameterisation) was level with it and lowered
two of the three final losses: this run asks whether the zoo's augmented half is what pulls the
continuations down.

Outcome: on ``char_lm_validation_wide`` with 6 seeds, paired with the start, its exports at steps
100-400 scored 1.21, 1.22, 1.21, 1.24 against 1.21, every final loss level with the start's
(step 400: -0.005, -0.002, -0.004, each within 2 standard errors): the first continuation whose
mean final losses are all below the start's, but by its rule
(``results/char_lm_specialist_long/choice_rule_default_init.md``) not shipped, as no task is
lower beyond 2 standard errors (``validation_default_init/`` there). Step 400 is kept as
``export_default_init_step_400``. 400 outer steps in 1,238 s, evaluations beside it.

    lopt-meta-train --config=experiments/char_lm_specialist_default_init --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.continued(outer_steps=400)
    c.zoo = "char_lm_wide_default"
    c.export_every = 100
    return c
