"""Where an estimate call of the reference meta-training config spends its time; prints JSON.

Profiles ``benchmarks/meta_train_throughput.py``'s reference config (image MLP on MNIST 8x8,
``MLPLOpt`` (32, 32), PES, truncation 50, 8 antithetic pairs) with ``jax.profiler.trace``: XLA:CPU
records one event per executed thunk (a fusion, a dot, a copy, ...), named after its HLO
instruction. Each instruction is classified twice from the compiled HLO text:

- by *part*, from the ``jax.named_scope`` in its ``op_name`` metadata: with ``--cpu_kernel``
  the optional fused CPU kernel of MLPLOpt's whole update (``fused_update``;
  ``learned_opt.cpu_kernel``), else (the default) XLA's version:
  the per-parameter MLP (``per_param_mlp``), the feature norms (``feature_norms``), the rest of its
  update (features, moments, apply: ``inner_lopt_update``), the task's forward/backward
  (``inner_task_grad``), the data batch (``inner_batch``), random bits, and the rest (PES: the
  perturbation, the scan's carry selects and copies, loss bookkeeping);
- by *kind*: a matrix product (a dot, or a fusion containing one), a reduction, a data movement
  (copy, transpose, dynamic-(update-)slice, concatenate, pad, or a fusion of only those), or
  element-wise.

Reported per estimate call: wall seconds; thunk-seconds by part and by kind (threads summed;
control-flow thunks, which contain the others, left out); thunks executed per inner step, in all
and by part, and the fraction of them shorter than 5 us (the per-step fixed cost: each thunk
costs the executor a dispatch); and the top instructions. The
profiler's per-thunk events add some overhead of their own, so ``wall_s_unprofiled`` (median of
the same calls without the profiler) is given beside them.

    JAX_PLATFORMS=cpu python benchmarks/throughput_profile.py [--calls 3] [--top 12] [--cpu_kernel]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import re
import statistics
import tempfile
import time

import jax
from machine_info import machine_info, run_main
from meta_train_throughput import REFERENCE_TASK, reference, reference_config

from meta_train.estimators import SCOPES

PARTS = (  # (part, substring of op_name), most specific first
    ("lopt_fused_update_kernel", "fused_update"),
    ("lopt_per_param_mlp", "per_param_mlp"),
    ("lopt_feature_norms", "feature_norms"),
    ("lopt_features_moments_apply", SCOPES["lopt"]),
    ("task_forward_backward", SCOPES["task"]),
    ("data_batch", SCOPES["batch"]),
    ("random_bits", "random_bits"),
)
SHORT_NS = 5_000  # a thunk shorter than this is mostly the executor's fixed cost
CONTROL = {"while", "conditional", "call"}
MOVES = {
    "copy",
    "transpose",
    "dynamic-slice",
    "dynamic-update-slice",
    "concatenate",
    "pad",
    "slice",
    "bitcast",
    "reshape",
    "broadcast",
    "parameter",
    "constant",
    "tuple",
    "get-tuple-element",
}
_INSTR = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = .*?\s([a-z][\w\-]*)\((.*)$")


def parse_hlo(text: str) -> dict:
    """{instruction name: (opcode, op_name metadata, opcodes of a fusion's computation)}."""
    comps, current, instrs = {}, None, {}
    for line in text.splitlines():
        head = re.match(r"^(?:ENTRY )?%([\w.\-]+) .*\{$", line)
        if head:
            current = comps.setdefault(head.group(1), set())
            continue
        m = _INSTR.match(line)
        if not m:
            continue
        name, opcode, rest = m.groups()
        if current is not None:
            current.add(opcode)
        op_name = re.search(r'op_name="([^"]*)"', rest)
        calls = re.search(r"calls=%([\w.\-]+)", rest)
        meta = op_name.group(1) if op_name else ""
        instrs[name] = (opcode, meta, calls.group(1) if calls else "")
    return {
        n: (op, meta, comps.get(called, set()) if op == "fusion" else set())
        for n, (op, meta, called) in instrs.items()
    }


def part_of(op_name: str) -> str:
    for part, key in PARTS:
        if key in op_name:
            return part
    return "pes_scan_bookkeeping"


def kind_of(opcode: str, fused: set) -> str:
    ops = fused or {opcode}
    if ops & {"dot", "convolution", "custom-call"} or opcode == "custom-call":
        return "matmul"
    if "reduce" in ops or "reduce-window" in ops:
        return "reduce"
    if ops <= MOVES:
        return "data_movement"
    return "elementwise"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--truncation", type=int, default=50)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--task", default=REFERENCE_TASK)
    ap.add_argument("--cpu_kernel", action="store_true", help="MLPLOpt's optional fused CPU kernel")
    args = ap.parse_args()

    est, theta, data, nparams, nmeta, lopt = reference(
        args.pairs, args.truncation, "pes", args.task, cpu_kernel=args.cpu_kernel
    )
    particles = est.init(jax.random.PRNGKey(1), theta, args.pairs)
    step = jax.jit(est.estimate)
    key = jax.random.PRNGKey(2)
    hlo = parse_hlo(step.lower(theta, particles, key, data).compile().as_text())
    jax.block_until_ready(step(theta, particles, key, data))  # compile + warm up

    def calls():
        t0 = time.perf_counter()
        for c in range(args.calls):
            jax.block_until_ready(step(theta, particles, jax.random.PRNGKey(10 + c), data))
        return (time.perf_counter() - t0) / args.calls

    unprofiled = statistics.median(calls() for _ in range(3))
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp):
            profiled = calls()
        (path,) = glob.glob(f"{tmp}/**/*.xplane.pb", recursive=True)
        profile = jax.profiler.ProfileData.from_file(path)

    by_part, by_kind, by_instr = collections.Counter(), collections.Counter(), collections.Counter()
    part_count, short = collections.Counter(), 0
    count = 0
    for plane in profile.planes:
        for line in plane.lines:
            for event in line.events:
                info = hlo.get(event.name)
                if info is None or info[0] in CONTROL:
                    continue
                seconds = event.duration_ns * 1e-9 / args.calls
                by_part[part_of(info[1])] += seconds
                by_kind[kind_of(info[0], info[2])] += seconds
                by_instr[event.name] += seconds
                part_count[part_of(info[1])] += 1
                short += event.duration_ns < SHORT_NS
                count += 1
    inner_steps = 2 * args.pairs * est.steps_per_pair
    total = sum(by_part.values())
    share = lambda c: {k: dict(s=round(v, 4), frac=round(v / total, 3)) for k, v in c.most_common()}
    top = [
        dict(
            instr=n,
            s=round(v, 4),
            part=part_of(hlo[n][1]),
            kind=kind_of(hlo[n][0], hlo[n][2]),
            op_name=hlo[n][1][-90:],
        )
        for n, v in by_instr.most_common(args.top)
    ]
    out = dict(
        benchmark="throughput_profile",
        wall_s_unprofiled=round(unprofiled, 4),
        inner_steps_per_s_unprofiled=round(inner_steps / unprofiled, 1),
        wall_s_profiled=round(profiled, 4),
        thunk_s=round(total, 4),
        thunks_per_inner_step=round(count / args.calls / args.truncation, 1),
        thunks_per_inner_step_by_part={
            k: round(v / args.calls / args.truncation, 1) for k, v in part_count.most_common()
        },
        thunks_under_5us_frac=round(short / max(count, 1), 3),
        by_part=share(by_part),
        by_kind=share(by_kind),
        top=top,
        config=reference_config(args, nparams, nmeta, lopt, calls=args.calls),
        machine=machine_info(),
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    run_main(main)
