"""The main job (``lopt-quickstart``) end to end on a cut-down quickstart: it meta-trains,
evaluates the result against tuned AdamW + cosine and tuned Adam on embedded held-out tasks,
and writes the outputs."""

import csv
import json

import numpy as np
from jax.flatten_util import ravel_pytree

import learned_opt
from eval import main_job
from meta_train import outer


def test_main_job_writes_table_plots_and_a_loadable_optimizer(tmp_path, tiny_config):
    c = tiny_config()  # 8 outer steps, exported at step 8
    out = main_job.run_main_job(
        str(tmp_path), seeds=1, steps=40, progress=False, config=c, suite="embedded_heldout"
    )
    eval_dir = tmp_path / "eval"
    for name in ("results.jsonl", "summary.md", "summary.csv", "curves.png", "speedups.png"):
        assert (eval_dir / name).stat().st_size > 0, name
    with open(eval_dir / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = " ".join(rows[0])
    cands = {"learned", "learned_init", "adamw_cos", "adam", "adam@0.001"}
    for cand in cands:
        assert cand in header, (cand, header)
    recs = [json.loads(x) for x in (eval_dir / "results.jsonl").read_text().splitlines()]
    assert {r["candidate"] for r in recs} == cands
    assert all(r["num_steps"] == 40 for r in recs)
    # the grid reaches 1.0, where baselines may blow up; no chosen configuration diverged
    assert not any(cell.diverged for cell in out["summary"].cells.values())
    assert not any(r["diverged"] for r in recs if r["kind"] == "learned")
    # initial_lopt is the run's initial theta; the export is the theta after its 8 outer steps:
    # it moved from there, by no more than 8 AdamW steps can (each under 10 x the rate)
    lopt, theta = learned_opt.load_meta_params(str(tmp_path / "meta_train" / "export"))
    _, theta0 = learned_opt.load_meta_params(str(tmp_path / "initial_lopt"))
    np.testing.assert_array_equal(
        ravel_pytree(theta0)[0], ravel_pytree(outer.initial_theta(c, lopt))[0]
    )
    moved = np.abs(ravel_pytree(theta)[0] - ravel_pytree(theta0)[0]).max()
    assert lopt.name == "hyper" and 0 < moved < 8 * 10 * c.meta_opt.learning_rate
    meta = learned_opt.load_description(str(tmp_path / "meta_train" / "export"))["metadata"]
    assert meta["outer_step"] == 8
    assert out["seconds"]["meta_train"] > 0 and out["summary"].references == ["adamw_cos", "adam"]
