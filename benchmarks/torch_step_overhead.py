"""Cost of one ``step()`` of the learned optimizer in PyTorch against torch.optim.Muon and AdamW;
prints JSON.

    python benchmarks/torch_step_overhead.py [--sizes 1m,10m] [--repeats 7] [--threads N]
                                             [--device cpu|cuda]

For each model size (two dense layers, ``nn.Linear`` weights and biases: the sizes of
``benchmarks/lopt_overhead.py``) and optimizer it times ``opt.step()`` on fixed gradients (the
optimizer's part of a training step; no forward or backward) and reports the median and min of
``--repeats`` runs after two warm-up steps, and the bytes of optimizer state:

- ``learned``: ``learned_opt.torch.load(None, params, num_steps=10_000)`` (the recommended
  optimizer; Newton-Schulz in float32, as the optax transform);
- ``muon``: ``torch.optim.Muon`` on the weight matrices plus ``torch.optim.AdamW`` on the biases
  (Muon takes only 2-d parameters; PyTorch's documentation pairs it with AdamW), both stepped;
  ``muon_matrices_only`` is Muon's step alone. torch's Muon runs Newton-Schulz in bfloat16,
  which is slow on a CPU without bfloat16 matrix units; ``muon_fp32`` is the same pair with
  Newton-Schulz in float32 (torch's function with the cast left out), the like-for-like
  reference of the learned optimizer's float32 Newton-Schulz;
- ``adamw``: ``torch.optim.AdamW`` on every parameter (its default foreach implementation);
- ``hyper``: the archived per-tensor LSTM optimizer, ``load("hyper_small_v2", ...)``.

``ratio_learned_over_muon`` (``_over_muon_fp32``, ``_over_adamw``) is the learned optimizer's
median over that optimizer's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # uninstalled repo
from machine_info import machine_info  # noqa: E402

import learned_opt.torch as lt  # noqa: E402

# name -> list of (fan_in, fan_out) dense layers (weight + bias each)
MODELS = {
    "10k": [(64, 128), (128, 16)],
    "1m": [(784, 1024), (1024, 192)],
    "10m": [(3072, 2048), (2048, 1792)],
}


def make_params(layers, device, seed=0):
    """nn.Linear-shaped parameters (weight (out, in), bias (out,)) with fixed gradients."""
    g = torch.Generator().manual_seed(seed)
    params = []
    for n_in, n_out in layers:
        w = torch.randn(n_out, n_in, generator=g) / n_in**0.5
        params += [w, torch.zeros(n_out)]
    params = [torch.nn.Parameter(p.to(device)) for p in params]
    for p in params:
        p.grad = 0.01 * torch.ones_like(p) + 0.1 * p.detach()
    return params


class _Pair:
    """Two optimizers stepped as one (Muon on matrices, AdamW on the rest)."""

    def __init__(self, *opts):
        self.opts = opts

    def step(self):
        for o in self.opts:
            o.step()

    @property
    def state(self):
        return {k: v for o in self.opts for k, v in o.state.items()}


def _ns_float32(grad, ns_coefficients, ns_steps, eps):
    """torch.optim.Muon's Newton-Schulz without its cast to bfloat16."""
    a, b, c = ns_coefficients
    x = grad.T if grad.size(0) > grad.size(1) else grad
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


@contextlib.contextmanager
def _muon_in_float32():
    from torch.optim import _muon

    original = _muon._zeropower_via_newtonschulz
    _muon._zeropower_via_newtonschulz = _ns_float32
    try:
        yield
    finally:
        _muon._zeropower_via_newtonschulz = original


def make_optimizer(name, params):
    if name in ("learned", "hyper"):
        opt = lt.load("hyper_small_v2" if name == "hyper" else None, params, num_steps=10_000)
        return lambda: opt.step(loss=1.0), opt
    matrices = [p for p in params if p.ndim == 2]
    rest = [p for p in params if p.ndim != 2]
    if name in ("muon", "muon_fp32"):
        opt = _Pair(torch.optim.Muon(matrices, lr=0.02), torch.optim.AdamW(rest, lr=1e-3))
    elif name == "muon_matrices_only":
        opt = torch.optim.Muon(matrices, lr=0.02)
    elif name == "adamw":
        opt = torch.optim.AdamW(params, lr=1e-3)
    else:
        raise ValueError(f"unknown optimizer {name!r}")
    return opt.step, opt


def state_bytes(opt):
    return int(
        sum(
            v.numel() * v.element_size()
            for st in opt.state.values()
            for v in st.values()
            if isinstance(v, torch.Tensor)
        )
    )


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_step(name, layers, repeats, device):
    params = make_params(layers, device)
    step, opt = make_optimizer(name, params)
    patch = _muon_in_float32() if name == "muon_fp32" else contextlib.nullcontext()
    times = []
    with patch:
        for _ in range(2):  # warm-up: state allocated, kernels loaded
            step()
        _sync(device)
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            _sync(device)
            times.append(time.perf_counter() - t0)
    return {
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "state_bytes": state_bytes(opt),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1m,10m", help=f"of {sorted(MODELS)}")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--optimizers",
        default="learned,muon,muon_fp32,muon_matrices_only,adamw,hyper",
        help="comma-separated",
    )
    args = parser.parse_args(argv)
    sizes = args.sizes.split(",")
    unknown = [s for s in sizes if s not in MODELS]
    if unknown:
        parser.error(f"--sizes: unknown size(s) {unknown}; known: {sorted(MODELS)}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    figures = {}
    for size in sizes:
        layers = MODELS[size]
        n = sum(i * o + o for i, o in layers)
        row = {"num_params": n}
        for name in args.optimizers.split(","):
            row[name] = time_step(name, layers, args.repeats, args.device)
        if "learned" in row and "muon" in row:
            row["ratio_learned_over_muon"] = row["learned"]["median_ms"] / row["muon"]["median_ms"]
        for other in ("muon_fp32", "adamw"):
            if "learned" in row and other in row:
                ratio = row["learned"]["median_ms"] / row[other]["median_ms"]
                row[f"ratio_learned_over_{other}"] = ratio
        figures[size] = row
    report = {
        "figure": "torch optimizer step time (ms, median of repeats) per model size",
        "config": {
            "sizes": {s: MODELS[s] for s in sizes},
            "repeats": args.repeats,
            "device": args.device,
            "torch_threads": torch.get_num_threads(),
            "learned": "learned_opt.torch.load(None, params, num_steps=10_000)",
            "muon": "torch.optim.Muon(matrices, lr=0.02) + torch.optim.AdamW(biases)",
        },
        "results": figures,
        "machine": machine_info("cpu", torch=torch.__version__, load_average_before=load_before),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
