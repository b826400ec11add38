"""The specialist recipe end to end on a tiny cut of its family: meta-train the recommended
optimizer further on char transformers (``--config=char_lm_specialist``), then evaluate the export
on the family's validation suite beside its starting point and tuned AdamW + cosine."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
from eval_cli_runner import REPO, run_eval_cli

import learned_opt


def _meta_train(workdir, cache) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    tiny = dict(
        outer_steps=2,
        num_groups=1,
        pairs_per_group=1,
        truncation_length=4,
        group_resample_every=0,
        checkpoint_every=2,
        export_every=2,
    )
    cmd = [
        sys.executable,
        "-m",
        "meta_train.cli",
        "--config=char_lm_specialist",
        f"--workdir={workdir}",
        f"--compilation_cache_dir={cache}",
        "--noprogress",
        "--config.episode.min_length=8",
        "--config.episode.max_length=16",
        *(f"--config.{k}={v}" for k, v in tiny.items()),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)


def test_specialist_recipe_meta_trains_from_the_recommended_and_evaluates(tmp_path):
    run = tmp_path / "specialist"
    done = _meta_train(run, tmp_path / "cache")
    assert done.returncode == 0, done.stderr[-2000:]

    export = run / "export"
    meta = json.loads((export / "lopt.json").read_text())["metadata"]
    assert meta["config"]["init_from"] == learned_opt.RECOMMENDED == "scale_free_v7"
    assert meta["config"]["zoo"] == "char_lm"
    _, start = learned_opt.load_meta_params(learned_opt.RECOMMENDED)
    _, theta = learned_opt.load_meta_params(str(export))
    moved = [
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(jax.tree.leaves(theta), jax.tree.leaves(start), strict=True)
    ]
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(theta))
    assert max(moved) > 0.0  # two meta-updates moved it away from where it started

    out = tmp_path / "eval"
    done = run_eval_cli(
        f"--workdir={out}",
        "--suite=char_lm_validation",
        "--tasks=lm_shakespeare_s16_w24_d1_b8",
        f"--optimizers=specialist={export},{learned_opt.RECOMMENDED},adamw_cos",
        "--lrs=0.001,0.01",
        "--steps=20",
        "--seeds=1",
        "--noprogress",
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    names = {r["candidate"] for r in rows}
    assert {"specialist", learned_opt.RECOMMENDED, "adamw_cos"} <= names, names
    table = (out / "summary.md").read_text()
    assert "`specialist`" in table and "`adamw_cos`" in table
