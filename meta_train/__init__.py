"""Meta-training learned optimizers with persistent evolution strategies.

particles.py   the particle population (antithetic pairs; leading axis = pair)
estimators.py  PES, NRES, FullES, TBPTT: pure (theta, particles, key, data) -> (grad, ...)
outer.py       task groups, the outer step, mesh / sharding of the particle axis
checkpoint.py  orbax checkpoints, resume, workdir identity
train.py       train(config, workdir): progress, metrics.jsonl, TensorBoard, export
config.py      base config, validation; configs/ holds quickstart, small, mulo, pod,
               hyper_small, hyper_broad, scale_free, scale_free_rel,
               scale_free_mup, scale_free_size, scale_free_balanced,
               scale_free_late, scale_free_late28, scale_free_matched,
               scale_free_horizon, scale_free_heavy28, scale_free_capped,
               scale_free_gate, scale_free_gate_grow
               (configs.NAMES)
cli.py         lopt-meta-train
"""
