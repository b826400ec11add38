"""Experiment records: the recipes of meta-training runs that led up to a shipping recipe or did
not ship, each addressed as ``experiments/NAME`` (``--config=experiments/scale_free_gate``).

Each file's docstring says what the run tried and what came of it; ``CHANGELOG.md`` and
``results/`` hold the measurements. A record keeps the config its run used: change it only by
adding a new file.
"""
