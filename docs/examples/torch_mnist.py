"""MNIST in PyTorch: the recommended learned optimizer against AdamW + cosine and Muon + cosine.

    TFDS_DATA_DIR=../shared/data/tfds python docs/examples/torch_mnist.py \
        [--steps 1000] [--seeds 0,1] [--adamw_lrs 1e-3,3e-3,1e-2,3e-2]
        [--muon_lrs 0.01,0.02,0.05] [--muon_ns bfloat16|float32]
        [--candidates learned,adamw_cos,muon_cos]

An MLP 784 -> 256 -> 128 -> 10 (235k parameters, ReLU) on MNIST, batch 128, trained ``--steps``
steps per seed by each candidate:

- ``learned``: ``learned_opt.torch.load(None, model, num_steps=steps)``, nothing tuned;
- ``adamw_cos@LR``: ``torch.optim.AdamW(lr=LR)`` (weight decay 0.01, torch's default) with
  linear warmup over 5% of the steps and cosine decay to 0;
- ``muon_cos@LR``: ``torch.optim.Muon(lr=LR)`` (torch's defaults: weight decay 0.1, Nesterov,
  5 Newton-Schulz steps) on the weight matrices and ``torch.optim.AdamW(lr=1e-3)`` on the
  biases, as PyTorch's documentation pairs them, both with the same warmup + cosine. torch's
  Muon runs Newton-Schulz in bfloat16, which is slow on a CPU without bfloat16 matrix units
  (about 0.7 s a step here); ``--muon_ns float32`` runs the same iteration in float32 (torch's
  function with the cast left out, as the learned optimizer does).

The baselines sweep the given rates; the summary keeps each baseline's best rate by training
loss (mean of the last 10% of steps, averaged over seeds). MNIST comes from the prepared tfds
data through ``tasks.data`` (no download). Prints one JSON line per run and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import learned_opt.torch  # noqa: E402
from tasks import data  # noqa: E402

BATCH = 128


def mnist() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train and test images as float32 (N, 784) in [0, 1] and int64 labels."""
    arrays = data.load("mnist")
    out = {}
    for split in ("train", "test"):
        x = arrays[split]["image"].reshape(len(arrays[split]["image"]), -1)
        out[split] = (
            torch.from_numpy(x.astype(np.float32) / 255.0),
            torch.from_numpy(arrays[split]["label"].astype(np.int64)),
        )
    return out


def make_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )


def warmup_cosine(steps: int):
    """The multiplier of LambdaLR: linear warmup over 5% of the steps, cosine decay to 0."""
    warm = max(steps // 20, 1)

    def factor(t: int) -> float:
        if t < warm:
            return t / warm
        return 0.5 * (1 + math.cos(math.pi * min(t - warm, steps - warm) / max(steps - warm, 1)))

    return factor


def _ns_float32(grad, ns_coefficients, ns_steps, eps):
    """torch.optim.Muon's Newton-Schulz iteration without its cast to bfloat16."""
    a, b, c = ns_coefficients
    x = grad.T if grad.size(0) > grad.size(1) else grad
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


def use_float32_newton_schulz() -> None:
    """Make torch.optim.Muon orthogonalise in float32 (replaces its private helper)."""
    from torch.optim import _muon

    if not hasattr(_muon, "_zeropower_via_newtonschulz"):
        raise SystemExit("--muon_ns float32: this torch's Muon has no _zeropower_via_newtonschulz")
    _muon._zeropower_via_newtonschulz = _ns_float32


def make_optimizer(name: str, lr: float | None, model: torch.nn.Module, steps: int):
    """(step(loss) function, optimizers) of a candidate."""
    if name == "learned":
        opt = learned_opt.torch.load(None, model, num_steps=steps)
        return (lambda loss: opt.step(loss=loss)), [opt]
    if name == "adamw_cos":
        opts = [torch.optim.AdamW(model.parameters(), lr=lr)]
    elif name == "muon_cos":
        matrices = [p for p in model.parameters() if p.ndim == 2]
        others = [p for p in model.parameters() if p.ndim != 2]
        opts = [torch.optim.Muon(matrices, lr=lr), torch.optim.AdamW(others, lr=1e-3)]
    else:
        raise ValueError(f"unknown candidate {name!r}")
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, warmup_cosine(steps)) for o in opts]

    def step(loss):
        del loss
        for o, s in zip(opts, scheds, strict=True):
            o.step()
            s.step()

    return step, opts


def train(name: str, lr: float | None, seed: int, steps: int, ds: dict) -> dict:
    """Train one candidate; returns its losses, test figures and time per step."""
    model = make_model(seed)
    step, opts = make_optimizer(name, lr, model, steps)
    x_train, y_train = ds["train"]
    gen = torch.Generator().manual_seed(1000 + seed)
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(x_train), (BATCH,), generator=gen)
        for o in opts:
            o.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
        loss.backward()
        step(loss.detach())
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - start
    with torch.no_grad():
        x_test, y_test = ds["test"]
        logits = model(x_test)
        test_loss = float(torch.nn.functional.cross_entropy(logits, y_test))
        test_acc = float((logits.argmax(1) == y_test).float().mean())
    tail = max(steps // 10, 1)
    return {
        "candidate": name if lr is None else f"{name}@{lr:g}",
        "seed": seed,
        "steps": steps,
        "train_loss": statistics.fmean(losses[-tail:]),
        "test_loss": test_loss,
        "test_accuracy": test_acc,
        "ms_per_step": 1e3 * seconds / steps,
        "loss_at": {str(s): losses[s - 1] for s in (steps // 4, steps // 2, steps)},
    }


def summary(records: list[dict]) -> str:
    """A Markdown table: the learned optimizer and each baseline at its best rate."""
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["candidate"], []).append(r)
    mean = lambda rs, k: statistics.fmean(r[k] for r in rs)
    best = {}
    for cand, rs in by.items():
        family = cand.split("@")[0]
        if family not in best or mean(rs, "train_loss") < mean(by[best[family]], "train_loss"):
            best[family] = cand
    lines = [
        "| candidate | train loss (last 10%) | test loss | test accuracy | ms / step |",
        "|---|---|---|---|---|",
    ]
    for family in sorted(best, key=lambda f: mean(by[best[f]], "train_loss")):
        rs = by[best[family]]
        lines.append(
            f"| `{best[family]}` | {mean(rs, 'train_loss'):.4f} | {mean(rs, 'test_loss'):.4f} | "
            f"{mean(rs, 'test_accuracy'):.4f} | {mean(rs, 'ms_per_step'):.1f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--adamw_lrs", default="1e-3,3e-3,1e-2,3e-2")
    parser.add_argument("--muon_lrs", default="0.01,0.02,0.05")
    parser.add_argument("--candidates", default="learned,adamw_cos,muon_cos")
    parser.add_argument("--muon_ns", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.muon_ns == "float32":
        use_float32_newton_schulz()
    ds = mnist()
    seeds = [int(s) for s in args.seeds.split(",")]
    wanted = args.candidates.split(",")
    runs = [("learned", None)]
    runs += [("adamw_cos", float(lr)) for lr in args.adamw_lrs.split(",") if lr]
    runs += [("muon_cos", float(lr)) for lr in args.muon_lrs.split(",") if lr]
    runs = [(name, lr) for name, lr in runs if name in wanted]
    records = []
    for name, lr in runs:
        for seed in seeds:
            records.append(train(name, lr, seed, args.steps, ds))
            print(json.dumps(records[-1]), flush=True)
    print(summary(records))
    return records


if __name__ == "__main__":
    main()
