"""Meta-training learned optimizers with persistent evolution strategies.

particles.py   the particle population (antithetic pairs; leading axis = pair)
estimators.py  PES, NRES, FullES, TBPTT: pure (theta, particles, key, data) -> (grad, ...)
outer.py       task groups, the outer step, mesh / sharding of the particle axis
checkpoint.py  orbax checkpoints, resume, workdir identity
train.py       train(config, workdir): progress, metrics.jsonl, TensorBoard, export
config.py      base config, validation; configs/ holds the shipping recipes
               (configs.NAMES: quickstart, small, mulo, pod, hyper_small, scale_free)
               and configs/experiments/ the records of runs that did not ship
               (configs.EXPERIMENTS)
cli.py         lopt-meta-train
"""
