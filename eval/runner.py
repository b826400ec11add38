"""Suite runner: train every (task, candidate) over seeds (and learning rates) in one program.

For one task, a single jitted program trains all runs of a candidate at once::

    baselines: vmap over rates [R] of vmap over seeds [S] of  run(lr, key)     -> curves [R, S, T]
    learned:   vmap over seeds [S] of run(theta, key)                           -> curves [1, S, T]

(baselines of the same optimizer, e.g. the ``adam`` sweep and ``adam@1e-3``, share one program:
their rates are stacked on the rate axis; see :func:`program_groups`),

and ``run`` is a ``lax.scan`` over evaluation chunks of a ``lax.scan`` over ``eval_every`` steps.
Seed ``s`` draws its initial parameters and minibatches from ``fold_in(key(base_seed), s)``, the
same for every candidate and rate, so candidates are compared on paired runs.

Each run becomes one JSON record (see :mod:`eval.records`), appended to ``results.jsonl`` and
flushed as soon as its program finishes; a later call with the same workdir skips every program
whose runs are all present (keyed by task, candidate, rate, seed and number of steps).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eval.baselines import (
    DEFAULT_LR_GRID,
    Candidate,
    EvalError,
    parse_candidate,
    parse_candidates,
)
from eval.records import (
    RESULTS_FILE,
    append_records,
    make_record,
    read_records,
    record_key,
)

DEFAULT_STEPS = 1000  # for tasks without a ``default_steps`` attribute
DEFAULT_NUM_EVALS = 20  # eval_every defaults to num_steps // DEFAULT_NUM_EVALS

log = logging.getLogger(__name__)


def task_steps(task: Any, num_steps: int | None) -> int:
    """``num_steps`` if positive, else the task's ``default_steps`` (else DEFAULT_STEPS)."""
    if num_steps:
        if num_steps < 1:
            raise EvalError(f"number of steps must be positive, got {num_steps}")
        return int(num_steps)
    return int(getattr(task, "default_steps", None) or DEFAULT_STEPS)


def make_train_fn(task: Any, candidate: Candidate, num_steps: int, eval_every: int):
    """``f(hp, key, data) -> (train_loss [T], eval_loss [E])`` for one run (pure, jit-able).

    train_loss[t] is the minibatch loss before update t+1; eval_loss[i] is ``task.eval_loss`` after
    ``eval.records.eval_schedule(T, K)[i]`` updates. The candidate's transform gets ``value=loss``.
    """
    n_chunks, rem = divmod(num_steps, eval_every)
    tags = task.param_tags() if candidate.kind == "learned" else None

    def run(hp, key, data):
        init_key, train_key, eval_key = jax.random.split(key, 3)
        params = task.init(init_key)
        tx = candidate.make(hp, num_steps=num_steps, param_tags=tags)
        opt_state = tx.init(params)

        def train_step(carry, t):
            params, opt_state = carry
            batch_key, loss_key = jax.random.split(jax.random.fold_in(train_key, t))
            batch = task.batch(batch_key, data, "train")
            loss, grads = jax.value_and_grad(task.loss)(params, loss_key, batch)
            updates, opt_state = tx.update(grads, opt_state, params, value=loss)
            return (optax.apply_updates(params, updates), opt_state), loss

        def evaluate(params, i):
            return task.eval_loss(params, jax.random.fold_in(eval_key, i), data)

        def chunk(carry, c):
            carry, losses = jax.lax.scan(train_step, carry, c * eval_every + jnp.arange(eval_every))
            return carry, (losses, evaluate(carry[0], c + 1))

        carry = (params, opt_state)
        evals = [evaluate(params, 0)[None]]
        carry, (losses, chunk_evals) = jax.lax.scan(chunk, carry, jnp.arange(n_chunks))
        train = [losses.reshape(-1)]
        evals.append(chunk_evals)
        if rem:
            carry, rest = jax.lax.scan(train_step, carry, n_chunks * eval_every + jnp.arange(rem))
            train.append(rest)
            evals.append(evaluate(carry[0], n_chunks + 1)[None])
        return jnp.concatenate(train).astype(jnp.float32), jnp.concatenate(evals).astype(
            jnp.float32
        )

    return run


def program_groups(cands: Sequence[Candidate]) -> list[list[Candidate]]:
    """Candidates that can share one compiled program: baselines of the same optimizer (their
    rates are concatenated along the vmapped rate axis); each learned optimizer on its own."""
    groups: dict[Any, list[Candidate]] = {}
    for c in cands:
        key = ("baseline", c.optimizer) if c.kind == "baseline" else ("learned", c.label)
        groups.setdefault(key, []).append(c)
    return list(groups.values())


def run_program(
    task,
    group: Sequence[Candidate],
    data,
    seeds: Sequence[int],
    num_steps: int,
    eval_every: int,
    base_seed: int = 0,
) -> dict:
    """Compile and run all rates x seeds of a group of candidates (see :func:`program_groups`).

    Returns dict(runs=[(candidate, rate or None)] * R, train=[R, S, T], eval=[R, S, E],
    compile_s, run_s): host numpy curves, row r belonging to ``runs[r]``.
    """
    first = group[0]
    if len({(c.kind, c.optimizer) for c in group}) != 1 or (
        first.kind != "baseline" and len(group) != 1
    ):
        raise ValueError(f"candidates {[c.label for c in group]} cannot share one program")
    run = make_train_fn(task, first, num_steps, eval_every)
    over_seeds = jax.vmap(run, in_axes=(None, 0, None))
    base = jax.random.key(base_seed)
    keys = jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.asarray(seeds, jnp.uint32))
    if first.kind == "baseline":
        runs = [(c, lr) for c in group for lr in c.rates]
        fn = jax.jit(jax.vmap(over_seeds, in_axes=(0, None, None)))
        hp = jnp.asarray([lr for _, lr in runs], jnp.float32)
    else:
        runs = [(first, None)]
        fn = jax.jit(lambda th, k, d: jax.tree.map(lambda x: x[None], over_seeds(th, k, d)))
        hp = first.theta
    t0 = time.perf_counter()
    compiled = fn.lower(hp, keys, data).compile()
    t1 = time.perf_counter()
    train, evals = jax.block_until_ready(compiled(hp, keys, data))
    t2 = time.perf_counter()
    return dict(
        runs=runs, train=np.asarray(train), eval=np.asarray(evals), compile_s=t1 - t0, run_s=t2 - t1
    )


def resolve_tasks(suite: str | Sequence[Any]) -> list[Any]:
    """A suite name (via ``tasks.suite``) or a list of Task objects / registered task names."""
    import tasks as task_zoo

    if isinstance(suite, str):
        known = list(task_zoo.suite_names())
        if suite not in known:
            raise EvalError(f"unknown suite {suite!r}; known suites: {', '.join(known)}")
        return list(task_zoo.suite(suite))
    out = []
    for t in suite:
        if isinstance(t, str):
            try:
                t = task_zoo.get(t)
            except KeyError as e:
                raise EvalError(e.args[0] if e.args else f"unknown task {t!r}") from None
        out.append(t)
    return out


def run_suite(
    suite: str | Sequence[Any],
    optimizers: str | Sequence[str | Candidate],
    *,
    num_steps: int | None = None,
    num_seeds: int = 3,
    workdir: str | os.PathLike | None = None,
    lr_grid: Sequence[float] = DEFAULT_LR_GRID,
    eval_every: int | None = None,
    reference: str | None = "adam",
    base_seed: int = 0,
    smooth_fraction: float = 0.05,
    progress: bool = True,
    report: bool = True,
) -> list[dict]:
    """Evaluate ``optimizers`` on every task of ``suite``; returns one record per run.

    Args:
      suite: a suite name (``tasks.suite_names()``) or a list of tasks / task names.
      optimizers: comma-separated string or list of items for :func:`parse_candidates`, or
        Candidate objects. The ``reference`` baseline (tuned over ``lr_grid``) is added if absent.
      num_steps: training steps per run; None/0 = each task's ``default_steps``.
      num_seeds: seeds 0..num_seeds-1 per (task, candidate, rate).
      workdir: where results.jsonl (resumable), summary.md/csv and plots go; None = in memory.
      eval_every: held-out evaluation interval; None/0 = num_steps // 20.
      report: write summary and plots into workdir when done.

    Records of earlier calls in ``workdir`` that match a requested run are reused, not re-run.
    """
    if num_seeds < 1:
        raise EvalError(f"number of seeds must be >= 1, got {num_seeds}")
    task_list = resolve_tasks(suite)
    if not task_list:
        raise EvalError(f"suite {suite!r} has no tasks")
    cands, reference = resolve_candidates(optimizers, reference, lr_grid)
    path = None
    done: dict[tuple, dict] = {}
    if workdir is not None:
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, RESULTS_FILE)
        done = {record_key(r): r for r in read_records(path)}
    seeds = list(range(num_seeds))
    jobs = [(t, g) for t in task_list for g in program_groups(cands)]
    out: list[dict] = []
    data_cache: dict[Any, Any] = {}
    with _progress(len(jobs), progress) as bar:
        for task, group in jobs:
            bar.set_postfix_str(f"{task.name} / {'+'.join(c.label for c in group)}")
            steps = task_steps(task, num_steps)
            every = min(int(eval_every or max(1, steps // DEFAULT_NUM_EVALS)), steps)
            want = [
                (task.name, c.label, lr, s, steps)
                for c in group
                for lr in (c.rates if c.kind == "baseline" else [None])
                for s in seeds
            ]
            if not all(k in done for k in want):
                data = _task_data(task, data_cache)
                new = _run_group(task, group, data, seeds, steps, every, base_seed, smooth_fraction)
                fresh = [r for r in new if record_key(r) not in done]
                if path is not None:
                    append_records(path, fresh)
                done.update({record_key(r): r for r in fresh})
            out += [done[k] for k in want]
            bar.update(1)
    task_pos = {t.name: i for i, t in enumerate(task_list)}
    cand_pos = {c.label: i for i, c in enumerate(cands)}
    out.sort(key=lambda r: (task_pos[r["task"]], cand_pos[r["candidate"]]))  # stable
    if report and workdir is not None:
        from eval import report as report_lib

        report_lib.write_report(out, workdir, reference=reference, smooth_fraction=smooth_fraction)
    return out


def resolve_candidates(
    optimizers: str | Sequence[str | Candidate], reference: str | None, lr_grid: Sequence[float]
) -> tuple[list[Candidate], str | None]:
    """Parse the optimizer items; prepend the reference if absent; return its canonical label."""
    items = [optimizers] if isinstance(optimizers, str) else list(optimizers)
    cands: list[Candidate] = []
    for it in items:
        cands += [it] if isinstance(it, Candidate) else parse_candidates(it, lr_grid)
    labels = [c.label for c in cands]
    if len(set(labels)) != len(labels):
        raise EvalError(f"duplicate optimizer labels in {labels}; rename with LABEL=SPEC")
    if reference:
        ref = parse_candidate(reference, lr_grid)
        reference = ref.label  # canonical spelling, e.g. adam@1e-3 -> adam@0.001
        if reference not in labels:
            cands = [ref] + cands
    return cands, reference


def _run_group(task, group, data, seeds, steps, every, base_seed, smooth_fraction) -> list[dict]:
    """Run one program (see :func:`run_program`) and turn its curves into records."""
    res = run_program(task, group, data, seeds, steps, every, base_seed)
    timing = dict(
        compile_s=res["compile_s"], run_s=res["run_s"], num_runs=len(res["runs"]) * len(seeds)
    )
    new = [
        make_record(
            task,
            c,
            lr,
            s,
            steps,
            every,
            res["train"][i, j],
            res["eval"][i, j],
            timing,
            smooth_fraction,
        )
        for i, (c, lr) in enumerate(res["runs"])
        for j, s in enumerate(seeds)
    ]
    for c in group:
        _warn_divergence([r for r in new if r["candidate"] == c.label], c)
    return new


def _task_data(task, cache: dict):
    key = getattr(task, "group_key", None) or task.name
    try:
        hash(key)
    except TypeError:
        key = task.name
    if key not in cache:
        cache.clear()  # keep at most one dataset on the device at a time
        cache[key] = jax.device_put(task.load_data())
    return cache[key]


def _warn_divergence(records: list[dict], cand: Candidate) -> None:
    bad = [r for r in records if r["diverged"]]
    if not bad:
        return
    if cand.tuned:
        rates = sorted({r["lr"] for r in bad})
        log.info(
            "%s / %s: diverged at rates %s (excluded from the rate choice)",
            bad[0]["task"],
            cand.label,
            ", ".join(f"{x:g}" for x in rates),
        )
    else:
        log.warning(
            "%s / %s: %d of %d runs diverged (NaN/inf loss, first at step %d)",
            bad[0]["task"],
            cand.label,
            len(bad),
            len(records),
            min(r["diverged_at"] for r in bad),
        )


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def set_postfix_str(self, *_):
        pass

    def update(self, *_):
        pass


@contextlib.contextmanager
def _progress(total: int, enabled: bool):
    """A tqdm bar over programs; log messages are routed around it while it is shown."""
    if not enabled:
        yield _NoBar()
        return
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(), tqdm(total=total, desc="lopt-eval", unit="program") as bar:
        yield bar
