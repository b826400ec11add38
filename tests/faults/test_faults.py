"""The fault table, each case a small subprocess on a tiny quickstart (see fault_cases).

Every case asserts its exit code, its one-line message (the last line of stderr) and that
nothing was lost. The cases run a few at a time in one session fixture (most of their time is
process start-up), so the whole table takes about two minutes on 2 CPU cores.
"""

from __future__ import annotations

import concurrent.futures
import re

import fault_harness as h
import pytest
from fault_cases import CASES

WORKERS = 3


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    cache = base / "xla_cache"
    ref = h.Ctx(base, cache, base / "full", base / "partial")
    # the reference runs: uninterrupted, and stopped after 4 steps (checkpoints 2 and 4)
    full = h.run(h.meta_train_argv(ref, ref.full))
    assert full.code == 0, full.stderr[-3000:]
    part = h.run(h.meta_train_argv(ref, ref.partial, steps=4))
    assert part.code == 0, part.stderr[-3000:]

    def one(case):
        tmp = base / case.name
        tmp.mkdir()
        ctx = h.Ctx(tmp, cache, ref.full, ref.partial)
        try:
            return case.name, ctx, case.runner(ctx)
        except Exception as e:  # noqa: BLE001 - reported by the case's test
            return case.name, ctx, h.Outcome(-1, f"runner failed: {type(e).__name__}: {e}", 0.0)

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        done = {name: (ctx, out) for name, ctx, out in pool.map(one, CASES)}
    for name, (_, out) in done.items():
        print(f"fault case {name}: exit {out.code} in {out.seconds:.1f}s")
    return done


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault(case, outcomes):
    ctx, out = outcomes[case.name]
    if out.code == -999:
        pytest.skip(out.stderr)
    assert out.code == case.code, f"exit {out.code} after {out.seconds:.1f}s\n{out.stderr[-3000:]}"
    if case.message:
        assert re.search(case.message, out.last_line), out.last_line
        assert out.last_line.startswith(
            ("lopt-meta-train: error:", "lopt-eval: error:", "lopt-meta-train: stopped")
        ), out.last_line
    if case.check is not None:
        case.check(ctx, out)
