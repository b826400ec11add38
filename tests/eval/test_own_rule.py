"""A user's own optax rule, registered as a baseline, is tuned and reported like the built-in
ones (the README's "Evaluate an optimizer" example, on a tiny task)."""

from __future__ import annotations

import math

import optax

import eval as lopt_eval
from eval.baselines import Baseline, warmup_cosine


def test_own_rule_is_tuned_and_reported(monkeypatch, tmp_path):
    monkeypatch.setitem(
        lopt_eval.BASELINES,
        "my_rule",
        Baseline(lambda lr, n: optax.lamb(warmup_cosine(lr, n)), "optax.lamb(cos)", "cosine"),
    )
    grid = (1e-2, 1e-1)
    records = lopt_eval.run_suite(
        ["linreg_d64_n0.3_b32"],
        "my_rule",
        num_steps=30,
        num_seeds=1,
        lr_grid=grid,
        workdir=tmp_path,
        time_steps=0,
        progress=False,
    )
    mine = [r for r in records if r["candidate"] == "my_rule"]
    assert sorted(r["lr"] for r in mine) == list(grid)
    assert all(math.isfinite(r["final_train_loss"]) for r in mine), mine
    assert {r["candidate"] for r in records} >= {"my_rule", "adamw_cos", "adam"}  # the references
    lopt_eval.write_report(records, tmp_path)
    assert "my_rule" in (tmp_path / "summary.md").read_text()
