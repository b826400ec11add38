"""Meta-training learned optimizers with persistent evolution strategies.

particles.py   the particle population (antithetic pairs; leading axis = pair)
estimators.py  PES, NRES, FullES, TBPTT: pure (theta, particles, key, data) -> (grad, ...);
               EstimatorSettings, the estimators' settings
outer.py       task groups, the outer step, mesh / sharding of the particle axis
floor.py       the members of a run's groups just trained at theta: meta-training's cost floor
checkpoint.py  orbax checkpoints, resume, workdir identity
train.py       train(config, workdir): progress, metrics.jsonl, TensorBoard, export
spec.py        RunSpec: the run's frozen settings, built once from the config by train();
               every layer below train takes it (or a part of it), never the config
config.py      base config, validation; configs/ holds the shipping recipes
               (configs.NAMES: quickstart, small, mulo, pod, hyper_small, scale_free,
               char_lm_specialist) and configs/experiments/ the records of runs that did not ship
               (configs.EXPERIMENTS)
cli.py         lopt-meta-train
"""
