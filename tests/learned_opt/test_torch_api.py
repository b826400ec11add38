"""learned_opt.torch as a torch.optim.Optimizer: no JAX imported, training, closures, param
groups, state_dict resuming exactly (float32 and bfloat16), CUDA where there is one, and bad
input refused in one line naming the thing."""

import io
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

import learned_opt.torch as lt  # noqa: E402
from learned_opt import files  # noqa: E402

torch.set_num_threads(1)  # tiny tensors; two threads on two busy cores are far slower


def _model(seed=0, dtype=torch.float32, device="cpu"):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(
        torch.nn.Embedding(20, 8),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 4, 16),
        torch.nn.LayerNorm(16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 20),
    )
    return m.to(device=device, dtype=dtype)


def _batch(step, device="cpu"):
    g = torch.Generator().manual_seed(step)
    x = torch.randint(0, 20, (16, 4), generator=g)
    return x.to(device), x[:, 0].to(device)


def _train(model, opt, steps, first=0, device="cpu"):
    losses = []
    for i in range(first, first + steps):
        x, y = _batch(i, device)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step(loss=loss)
        losses.append(float(loss.detach()))
    return losses


def test_no_jax_on_the_torch_path():
    code = textwrap.dedent(
        """
        import sys, torch
        import learned_opt.torch as lt
        model = torch.nn.Linear(4, 3)
        opt = lt.load(model.parameters(), num_steps=10)
        loss = model(torch.ones(2, 4)).square().mean()
        loss.backward()
        opt.step(loss=loss)
        assert "jax" not in sys.modules, sorted(m for m in sys.modules if m.startswith("jax"))
        print("OK")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-2000:]


def test_trains_and_matches_a_closure():
    model = _model()
    opt = lt.load(None, model, num_steps=150)
    assert isinstance(opt, torch.optim.Optimizer)
    losses = _train(model, opt, 150)
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], losses
    # step(closure) gives the same parameters as step(loss=...)
    a, b = _model(1), _model(1)
    opt_a, opt_b = lt.load(None, a, num_steps=20), lt.load(None, b, num_steps=20)
    _train(a, opt_a, 5)
    for i in range(5):
        x, y = _batch(i)

        def closure(x=x, y=y):
            opt_b.zero_grad()
            loss = torch.nn.functional.cross_entropy(b(x), y)
            loss.backward()
            return loss

        opt_b.step(closure)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    # the per-tensor LSTM optimizer trains too
    model = _model()
    losses = _train(model, lt.load("hyper_small_v2", model, num_steps=150), 150)
    assert sum(losses[-5:]) / 5 < 0.7 * losses[0], losses


@pytest.mark.parametrize(
    "dtype, name",
    [(torch.float32, None), (torch.bfloat16, None), (torch.float32, "hyper_small_v2")],
    ids=["float32", "bfloat16", "hyper"],
)
def test_state_dict_resumes_exactly(dtype, name):
    """100 steps, against 50 steps, state_dict through torch.save, a new model and optimizer,
    load_state_dict and 50 more: identical parameters (float32 state for bfloat16 params)."""
    ref = _model(dtype=dtype)
    _train(ref, lt.load(name, ref, num_steps=100), 100)

    first = _model(dtype=dtype)
    opt = lt.load(name, first, num_steps=100)
    _train(first, opt, 50)
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)
    resumed = _model(seed=7, dtype=dtype)
    resumed.load_state_dict(saved["model"])
    opt2 = lt.load(name, resumed, num_steps=100)
    opt2.load_state_dict(saved["opt"])
    for st in opt2.state.values():
        for v in st.values():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                assert v.dtype == torch.float32
    _train(resumed, opt2, 50, first=50)
    for p, q in zip(ref.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_param_groups_and_named_parameters():
    model = _model()
    groups = lt.param_groups(model)
    assert [g["layout"] for g in groups] == ["in_out", "out_in"]
    assert groups[0]["param_names"] == ["0.weight"]
    # a group with its own lr and tag; named parameters name a bad one
    norms = [p for n, p in model.named_parameters() if n.startswith("3.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("3.")]
    opt = lt.load(None, [{"params": rest}, {"params": norms, "lr": 0.0, "tag": None}], num_steps=9)
    before = [p.detach().clone() for p in norms]
    _train(model, opt, 3)
    assert all(torch.equal(p, q) for p, q in zip(norms, before, strict=True))  # lr 0
    with pytest.raises(ValueError, match="'layout'.*'sideways'"):
        lt.load(None, [{"params": rest, "layout": "sideways"}], num_steps=9)
    with pytest.raises(ValueError, match="'tag'"):
        lt.load(None, [{"params": rest, "tag": "middle"}], num_steps=9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    cpu, gpu = _model(), _model(device="cuda")
    _train(cpu, lt.load(None, cpu, num_steps=30), 30)
    _train(gpu, lt.load(None, gpu, num_steps=30), 30, device="cuda")
    for p, q in zip(cpu.parameters(), gpu.parameters(), strict=True):
        torch.testing.assert_close(p, q.cpu(), rtol=1e-3, atol=1e-4)


def _one_line(exc_info):
    text = str(exc_info.value)
    assert "\n" not in text, text
    return text


def test_bad_input_is_one_line_naming_it(tmp_path):
    model = _model()
    with pytest.raises(ValueError, match="num_steps") as e:
        lt.load(None, model)
    _one_line(e)
    for bad in [0, 2.5, True, "100"]:
        with pytest.raises(ValueError, match="num_steps"):
            lt.load(None, model, num_steps=bad)
    counter = torch.nn.Parameter(torch.zeros(3, dtype=torch.int64), requires_grad=False)
    named = [("w", torch.nn.Parameter(torch.ones(2, 2))), ("counter", counter)]
    with pytest.raises(ValueError, match=r"counter \(shape \(3,\)\) has dtype torch.int64") as e:
        lt.load(None, named, num_steps=10)
    _one_line(e)
    sparse = torch.nn.Embedding(10, 4, sparse=True)
    opt = lt.load(None, sparse, num_steps=10)
    sparse(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(ValueError, match=r"weight \(shape \(10, 4\)\) has a sparse gradient") as e:
        opt.step(loss=1.0)
    _one_line(e)
    opt = lt.load(None, model, num_steps=10)
    with pytest.raises(ValueError, match="loss"):
        opt.step()
    # weights of another architecture, a missing name, a corrupt file
    other = tmp_path / "other"
    shutil.copytree(files.PRETRAINED_DIR / "scale_free_v6", other)
    desc = json.loads((other / "lopt.json").read_text())
    (other / "lopt.json").write_text(json.dumps(dict(desc, architecture="mlp", config={})))
    with pytest.raises(lt.LoadError, match=r"other.*'architecture' is 'mlp'.*not support") as e:
        lt.load(other, model, num_steps=10)
    _one_line(e)
    with pytest.raises(lt.NotFoundError, match="no_such_optimizer"):
        lt.load("no_such_optimizer", model, num_steps=10)
    saved = tmp_path / "saved"
    shutil.copytree(files.PRETRAINED_DIR / "scale_free_v6", saved)
    theta = saved / "theta.msgpack"
    raw = bytearray(theta.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    theta.write_bytes(bytes(raw))
    with pytest.raises(lt.LoadError, match="checksum") as e:
        lt.load(saved, model, num_steps=10)
    _one_line(e)
    desc = json.loads((files.PRETRAINED_DIR / "scale_free_v6" / "lopt.json").read_text())
    desc["config"]["muon_beta"] = 1.5
    shutil.copy(files.PRETRAINED_DIR / "scale_free_v6" / "theta.msgpack", theta)
    (saved / "lopt.json").write_text(json.dumps(desc))
    with pytest.raises(lt.LoadError, match="'config'.*muon_beta") as e:
        lt.load(saved, model, num_steps=10)
    _one_line(e)


def test_step_overhead_benchmark_prints_its_figures(capsys, monkeypatch):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[2] / "benchmarks" / "torch_step_overhead.py"
    monkeypatch.syspath_prepend(str(path.parent))  # its sibling machine_info
    spec = importlib.util.spec_from_file_location("torch_step_overhead", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--sizes", "10k", "--repeats", "1", "--threads", "1"])
    row = report["results"]["10k"]
    assert row["num_params"] == 64 * 128 + 128 + 128 * 16 + 16
    for name in ("learned", "muon", "muon_fp32", "muon_matrices_only", "adamw"):
        assert row[name]["median_ms"] > 0
    assert row["learned"]["state_bytes"] > 2 * 4 * row["num_params"]  # m and v in float32
    assert json.loads(capsys.readouterr().out)["figure"] == report["figure"]
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "huge"])
