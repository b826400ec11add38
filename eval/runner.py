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
whose runs are all present, keyed by content (task, label, rate, seed, base seed, steps, eval
interval and the candidate's fingerprint: a baseline's settings, a learned optimizer's settings
and weights). A record under the same label but from other weights, settings or seeds is not
reused: the run is repeated and a warning says why. Adding a candidate to an evaluation therefore
runs only that candidate.

Time per step (``step_s``) is measured apart from the vmapped program, on one un-batched run of
the candidate (``time_steps`` steps, best of 3 after a warm-up), since the program's time per run
depends on how many runs it batches.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

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
    run_key,
)
from tasks import training

DEFAULT_STEPS = 1000  # for tasks without a ``default_steps`` attribute
DEFAULT_NUM_EVALS = 20  # eval_every defaults to num_steps // DEFAULT_NUM_EVALS
DEFAULT_REFERENCE = "adamw_cos"  # the reference users run (AlgoPerf's baseline family)
CONSTANT_REFERENCE = "adam"  # tuned constant Adam, which published learned optimizers report
DEFAULT_TIME_STEPS = 100

log = logging.getLogger(__name__)


def task_steps(task: Any, num_steps: int | None) -> int:
    """``num_steps`` if positive, else the task's ``default_steps`` (else DEFAULT_STEPS)."""
    if num_steps:
        if num_steps < 1:
            raise EvalError(f"number of steps must be positive, got {num_steps}")
        return int(num_steps)
    return int(getattr(task, "default_steps", None) or DEFAULT_STEPS)


def _train_step_fn(task: Any, candidate: Candidate, num_steps: int):
    """``(init(hp, key) -> (carry, train_key, eval_key), step(hp, train_key, data) -> scan body)``:
    the one training step every run (and the step-time measurement) uses."""
    tags = task.param_tags() if candidate.kind == "learned" else None

    def init(hp, key):
        init_key, train_key, eval_key = jax.random.split(key, 3)
        params = task.init(init_key)
        tx = candidate.make(hp, num_steps=num_steps, param_tags=tags)
        return (params, tx.init(params)), train_key, eval_key

    def step(hp, train_key, data):
        tx = candidate.make(hp, num_steps=num_steps, param_tags=tags)
        train_step = training.train_step(task, tx, data)
        return lambda carry, t: train_step(carry, jax.random.fold_in(train_key, t))

    return init, step


def make_train_fn(task: Any, candidate: Candidate, num_steps: int, eval_every: int):
    """``f(hp, key, data) -> (train_loss [T], eval_loss [E])`` for one run (pure, jit-able).

    train_loss[t] is the minibatch loss before update t+1; eval_loss[i] is ``task.eval_loss`` after
    ``eval.records.eval_schedule(T, K)[i]`` updates. The candidate's transform gets ``value=loss``.
    """
    n_chunks, rem = divmod(num_steps, eval_every)
    init, step = _train_step_fn(task, candidate, num_steps)

    def run(hp, key, data):
        carry, train_key, eval_key = init(hp, key)
        train_step = step(hp, train_key, data)

        def evaluate(carry, i):
            params = candidate.eval_params(carry[1], carry[0])
            return task.eval_loss(params, jax.random.fold_in(eval_key, i), data)

        def chunk(carry, c):
            carry, losses = jax.lax.scan(train_step, carry, c * eval_every + jnp.arange(eval_every))
            return carry, (losses, evaluate(carry, c + 1))

        evals = [evaluate(carry, 0)[None]]
        carry, (losses, chunk_evals) = jax.lax.scan(chunk, carry, jnp.arange(n_chunks))
        train = [losses.reshape(-1)]
        evals.append(chunk_evals)
        if rem:
            carry, rest = jax.lax.scan(train_step, carry, n_chunks * eval_every + jnp.arange(rem))
            train.append(rest)
            evals.append(evaluate(carry, n_chunks + 1)[None])
        return jnp.concatenate(train).astype(jnp.float32), jnp.concatenate(evals).astype(
            jnp.float32
        )

    return run


def program_key(candidate: Candidate) -> tuple:
    """What fixes a candidate's compiled program on a task: its kind and settings (a baseline's
    optimizer, a learned optimizer's architecture), never its rates or weights, which are inputs.
    Learned optimizers of one architecture (``learned`` and ``learned_init``) share programs."""
    return candidate.kind, json.dumps(candidate.settings, sort_keys=True, default=str)


def _cached(programs: dict | None, key: tuple, build):
    """``programs[key]``, built by ``build()`` the first time (``programs=None``: no cache)."""
    if programs is None:
        return build()
    if key not in programs:
        programs[key] = build()
    return programs[key]


def time_per_step(
    task, candidate: Candidate, data, num_steps: int, time_steps: int, hp=None, programs=None
):
    """Seconds per training step of one un-batched run of ``candidate`` (its first rate, seed 0):
    ``time_steps`` steps scanned in one compiled call, best of 3 timed calls after a warm-up.

    ``programs``: a dict of this task's jitted functions, reused by candidates of one
    :func:`program_key` (so they compile once)."""
    k = max(1, min(int(time_steps), num_steps))
    if hp is None:
        hp = jnp.float32(candidate.rates[0]) if candidate.kind == "baseline" else candidate.theta

    def build():
        init, step = _train_step_fn(task, candidate, num_steps)

        @jax.jit
        def run_k(hp, carry, train_key, data):
            carry, losses = jax.lax.scan(step(hp, train_key, data), carry, jnp.arange(k))
            return carry, losses[-1]

        return jax.jit(init), run_k

    init, run_k = _cached(programs, ("time", program_key(candidate), num_steps, k), build)
    carry, train_key, _ = init(hp, jax.random.key(0))
    jax.block_until_ready(run_k(hp, carry, train_key, data))  # compile and warm up
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(run_k(hp, carry, train_key, data))
        best = min(best, time.perf_counter() - t0)
    return best / k


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
    programs: dict | None = None,
) -> dict:
    """Compile and run all rates x seeds of a group of candidates (see :func:`program_groups`).

    Returns dict(runs=[(candidate, rate or None)] * R, train=[R, S, T], eval=[R, S, E],
    compile_s, run_s): host numpy curves, row r belonging to ``runs[r]``. ``programs``: a dict
    of this task's compiled programs; a group whose :func:`program_key` and argument shapes were
    compiled before runs that program (``compile_s`` 0).
    """
    first = group[0]
    if len({(c.kind, c.optimizer) for c in group}) != 1 or (
        first.kind != "baseline" and len(group) != 1
    ):
        raise ValueError(f"candidates {[c.label for c in group]} cannot share one program")
    base = jax.random.key(base_seed)
    keys = jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.asarray(seeds, jnp.uint32))
    if first.kind == "baseline":
        runs = [(c, lr) for c in group for lr in c.rates]
        hp = jnp.asarray([lr for _, lr in runs], jnp.float32)
    else:
        runs = [(first, None)]
        hp = first.theta

    def build():
        over_seeds = jax.vmap(make_train_fn(task, first, num_steps, eval_every), (None, 0, None))
        if first.kind == "baseline":
            fn = jax.jit(jax.vmap(over_seeds, in_axes=(0, None, None)))
        else:
            fn = jax.jit(lambda th, k, d: jax.tree.map(lambda x: x[None], over_seeds(th, k, d)))
        return fn.lower(hp, keys, data).compile()

    leaves, treedef = jax.tree.flatten((hp, keys, data))
    signature = (treedef, tuple((jnp.shape(x), str(getattr(x, "dtype", type(x)))) for x in leaves))
    t0 = time.perf_counter()
    key = ("run", program_key(first), num_steps, eval_every, signature)
    compiled = _cached(programs, key, build)
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
    reference: str | None = DEFAULT_REFERENCE,
    constant_reference: str | None = CONSTANT_REFERENCE,
    base_seed: int = 0,
    smooth_fraction: float = 0.05,
    time_steps: int = DEFAULT_TIME_STEPS,
    progress: bool = True,
) -> list[dict]:
    """Evaluate ``optimizers`` on every task of ``suite``; returns one record per run.

    The summary and plots are the caller's to write: ``eval.write_report(records, workdir,
    references=reference_labels([reference, constant_reference]))``.

    Args:
      suite: a suite name (``tasks.suite_names()``) or a list of tasks / task names.
      optimizers: comma-separated string or list of items for :func:`parse_candidates`, or
        Candidate objects. The references (tuned over ``lr_grid``) are added if absent.
      num_steps: training steps per run; None/0 = each task's ``default_steps``.
      num_seeds: seeds 0..num_seeds-1 per (task, candidate, rate).
      workdir: where results.jsonl goes (resumable); None = in memory.
      eval_every: held-out evaluation interval; None/0 = num_steps // 20.
      reference: the baseline speedups and scores refer to (default tuned ``adamw_cos``).
      constant_reference: a second reference reported beside it (default tuned ``adam``, the one
        published learned optimizers report against); None for none.
      time_steps: steps of the separate time-per-step measurement; 0 = do not measure.

    Records of earlier calls in ``workdir`` whose content key matches a requested run are reused,
    not re-run; a record under the same label from other weights/settings/seeds is re-run.
    """
    if num_seeds < 1:
        raise EvalError(f"number of seeds must be >= 1, got {num_seeds}")
    task_list = resolve_tasks(suite)
    if not task_list:
        raise EvalError(f"suite {suite!r} has no tasks")
    cands, _ = resolve_candidates(optimizers, [reference, constant_reference], lr_grid)
    path = None
    done: dict[tuple, dict] = {}
    if workdir is not None:
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, RESULTS_FILE)
        old = read_records(path)
        done = {record_key(r): r for r in old}
        n_legacy = sum(r.get("fingerprint") is None for r in old)
        if n_legacy:
            log.warning(
                "%s: %d runs lack a content key (written by an older lopt-eval); they are not "
                "reused",
                path,
                n_legacy,
            )
    seeds = list(range(num_seeds))
    jobs = [(t, g) for t in task_list for g in program_groups(cands)]
    out: list[dict] = []
    data_cache: dict[Any, Any] = {}
    programs: dict[tuple, Any] = {}  # the current task's compiled programs (see program_key)
    with _progress(len(jobs), progress) as bar:
        for i, (task, group) in enumerate(jobs):
            if i and task is not jobs[i - 1][0]:
                programs = {}
            bar.set_postfix_str(f"{task.name} / {'+'.join(c.label for c in group)}")
            steps = task_steps(task, num_steps)
            every = min(int(eval_every or max(1, steps // DEFAULT_NUM_EVALS)), steps)
            keys = {
                c.label: [
                    run_key(task.name, c, lr, s, base_seed, steps, every)
                    for lr in (c.rates if c.kind == "baseline" else [None])
                    for s in seeds
                ]
                for c in group
            }
            want = [k for c in group for k in keys[c.label]]
            todo = [c for c in group if not all(k in done for k in keys[c.label])]
            if todo:  # only the candidates with missing runs
                _say_why_rerun(task.name, todo, want, done)
                data = _task_data(task, data_cache)
                new = _run_group(
                    task,
                    todo,
                    data,
                    seeds,
                    steps,
                    every,
                    base_seed,
                    smooth_fraction,
                    time_steps,
                    programs,
                )
                fresh = [r for r in new if record_key(r) not in done]
                log.info(
                    "%s / %s: %d runs in %.1f s (compile %.1f s), %s ms per step",
                    task.name,
                    "+".join(c.label for c in todo),
                    len(new),
                    new[0]["program_run_s"],
                    new[0]["program_compile_s"],
                    "n/a" if new[0]["step_s"] is None else f"{1e3 * new[0]['step_s']:.3g}",
                )
                if path is not None:
                    append_records(path, fresh)
                done.update({record_key(r): r for r in fresh})
            out += [done[k] for k in want]
            bar.update(1)
    task_pos = {t.name: i for i, t in enumerate(task_list)}
    cand_pos = {c.label: i for i, c in enumerate(cands)}
    out.sort(key=lambda r: (task_pos[r["task"]], cand_pos[r["candidate"]]))  # stable
    return out


def reference_labels(
    references: Sequence[str | None], lr_grid: Sequence[float] = DEFAULT_LR_GRID
) -> list[str]:
    """The labels the records of ``references`` (baseline specs, None for none) carry, as
    ``run_suite`` adds them: ``adam@1e-3`` -> ``adam@0.001``; repeats and Nones dropped."""
    return resolve_candidates([], references, lr_grid)[1]


def _say_why_rerun(task: str, group: Sequence[Candidate], want: list[tuple], done: dict) -> None:
    """Warn when a requested run is missing but a record under its label exists (other weights,
    settings or seeds): it is re-run, never reused."""
    loose = lambda k: (k[0], k[1], k[2], k[3], k[5])  # noqa: E731  task, label, lr, seed, steps
    have = {loose(k): r for k, r in done.items()}
    for c in group:
        stale = [have.get(loose(k)) for k in want if k[1] == c.label and k not in done]
        stale = [r for r in stale if r is not None]
        if stale:
            r = stale[0]
            log.warning(
                "%s / %s: re-running %d runs: results.jsonl has runs under this label from "
                "other settings (fingerprint %s, base seed %s, eval every %s; now %s, %s, %s)",
                task,
                c.label,
                len(stale),
                r.get("fingerprint"),
                r.get("base_seed"),
                r.get("eval_every"),
                c.fingerprint,
                want[0][4],
                want[0][6],
            )


def resolve_candidates(
    optimizers: str | Sequence[str | Candidate],
    references: Sequence[str | None],
    lr_grid: Sequence[float],
) -> tuple[list[Candidate], list[str]]:
    """Parse the optimizer items; prepend the reference baselines that are absent; return the
    candidates and the references' canonical labels (first: the reference of the scores)."""
    items = [optimizers] if isinstance(optimizers, str) else list(optimizers)
    cands: list[Candidate] = []
    for it in items:
        cands += [it] if isinstance(it, Candidate) else parse_candidates(it, lr_grid)
    labels = [c.label for c in cands]
    if len(set(labels)) != len(labels):
        raise EvalError(f"duplicate optimizer labels in {labels}; rename with LABEL=SPEC")
    refs, added = [], []
    for spec in references:
        if not spec:
            continue
        by_label = {c.label: c for c in cands}
        ref = by_label.get(spec) or parse_candidate(spec, lr_grid)
        if ref.kind != "baseline":
            raise EvalError(f"the reference must be a baseline, got {spec!r}")
        if ref.label not in refs:
            refs.append(ref.label)  # canonical spelling, e.g. adam@1e-3 -> adam@0.001
        if ref.label not in labels + [c.label for c in added]:
            added.append(ref)
    return added + cands, refs


def _run_group(
    task, group, data, seeds, steps, every, base_seed, smooth_fraction, time_steps=0, programs=None
) -> list[dict]:
    """Run one program (see :func:`run_program`) and turn its curves into records."""
    res = run_program(task, group, data, seeds, steps, every, base_seed, programs)
    step_s = None
    if time_steps:
        step_s = time_per_step(task, group[0], data, steps, time_steps, programs=programs)
    timing = dict(
        compile_s=res["compile_s"],
        run_s=res["run_s"],
        num_runs=len(res["runs"]) * len(seeds),
        step_s=step_s,
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
            base_seed,
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
            "%s / %s: %d of %d runs diverged (%s, first at step %d)",
            bad[0]["task"],
            cand.label,
            len(bad),
            len(records),
            bad[0]["diverged_why"],
            min(r["diverged_at"] for r in bad),
        )


@contextlib.contextmanager
def _progress(total: int, enabled: bool):
    """A tqdm bar over programs (a silent one when not ``enabled``); log messages are routed
    around it while it is shown."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    redirect = logging_redirect_tqdm() if enabled else contextlib.nullcontext()
    bar = tqdm(total=total, desc="lopt-eval", unit="program", disable=not enabled)
    with redirect, bar:
        yield bar
