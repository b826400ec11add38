"""The main job (``lopt-quickstart``) end to end on a cut-down config: it meta-trains the
scale-free learned optimizer, evaluates it beside its initial rule, tuned AdamW + cosine and tuned
Adam on embedded held-out tasks, writes the table and plots, and says what meta-training bought."""

import csv
import json

import numpy as np
from jax.flatten_util import ravel_pytree

import learned_opt
from eval import main_job
from meta_train import configs, outer, spec


def test_job_config_is_the_scale_free_recipes_optimizer_on_the_quickstart_zoo():
    c, recipe, quick = main_job.job_config(), configs.get("scale_free"), configs.get("quickstart")
    assert c.lopt.architecture == recipe.lopt.architecture == "scale_free"
    assert dict(c.lopt.config) == dict(recipe.lopt.config) and c.init_from == ""
    assert c.zoo == quick.zoo and c.outer_steps == quick.outer_steps
    assert quick.lopt.architecture != "scale_free"  # the fault suite's config is left alone


def test_main_job_writes_table_plots_and_a_loadable_optimizer(tmp_path, tiny_config):
    c = main_job.job_config(tiny_config())  # 8 outer steps, exported at step 8
    out = main_job.run_main_job(
        str(tmp_path), seeds=1, steps=40, progress=False, config=c, suite="embedded_heldout"
    )
    eval_dir = tmp_path / "eval"
    for name in ("results.jsonl", "summary.md", "summary.csv", "curves.png", "speedups.png"):
        assert (eval_dir / name).stat().st_size > 0, name
    # the table: the learned optimizer beside its initial rule, tuned AdamW + cosine and Adam
    cands = ["learned", "learned_init", "adamw_cos", "adam"]
    md = (eval_dir / "summary.md").read_text()
    assert "| task | " + " | ".join(f"`{x}`" for x in cands) + " |" in md
    with open(eval_dir / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    tasks = {r["task"]: r for r in rows}
    assert set(out["summary"].tasks) <= set(tasks) and len(out["summary"].tasks) == 5
    assert all(tasks[t][f"{x}:speedup"] for t in out["summary"].tasks for x in cands)
    recs = [json.loads(x) for x in (eval_dir / "results.jsonl").read_text().splitlines()]
    assert {r["candidate"] for r in recs} == set(cands)
    assert all(r["num_steps"] == 40 for r in recs)
    # the grid reaches 1.0, where baselines may blow up; no chosen configuration diverged
    assert not any(cell.diverged for cell in out["summary"].cells.values())
    assert not any(r["diverged"] for r in recs if r["kind"] == "learned")
    # initial_lopt is the run's initial theta; the export is the theta after its 8 outer steps:
    # it moved from there, by no more than 8 AdamW steps can (each under 10 x the rate)
    lopt, theta = learned_opt.load_meta_params(str(tmp_path / "meta_train" / "export"))
    init_lopt, theta0 = learned_opt.load_meta_params(str(tmp_path / "initial_lopt"))
    assert lopt == init_lopt and lopt.name == "scale_free" and lopt.relative
    np.testing.assert_array_equal(
        ravel_pytree(theta0)[0], ravel_pytree(outer.initial_theta(spec.from_config(c)))[0]
    )
    moved = np.abs(ravel_pytree(theta)[0] - ravel_pytree(theta0)[0]).max()
    assert 0 < moved < 8 * 10 * c.meta_opt.learning_rate
    meta = learned_opt.load_description(str(tmp_path / "meta_train" / "export"))["metadata"]
    assert meta["outer_step"] == 8
    assert out["seconds"]["meta_train"] > 0 and out["summary"].references == ["adamw_cos", "adam"]
    # the closing sentence quotes the table's medians, initial rule -> learned
    agg = out["summary"].aggregates
    want = f"{agg['learned_init']['median_speedup']:.3g} -> {agg['learned']['median_speedup']:.3g}"
    assert want in out["verdict"] and "8 outer steps" in out["verdict"], out["verdict"]
