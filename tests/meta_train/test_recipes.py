"""Every named config resolves: its config validates, and its zoo, learned optimizer and
``init_from`` weights build and agree (a recipe that names a zoo or a shipped optimizer that does
not exist, or starts from weights of another architecture, fails here rather than at run time).

And every named config keeps its values: ``recipe_values.json`` holds each one as it was before the
configs were split into shipping recipes and ``experiments/`` (``config.base()`` flattened, and per
name the fields that differ from it); the shipped weights' ``lopt.json`` records the config of the
run that made them.
"""

import ast
import json
import pathlib
import re

import jax
import pytest

import learned_opt
from meta_train import config as config_lib
from meta_train import configs, spec

RECORDED = json.loads((pathlib.Path(__file__).parent / "recipe_values.json").read_text())
CONFIGS_DIR = pathlib.Path(configs.__file__).parent


def flat(d: dict, prefix: str = "") -> dict:
    """``{"episode.max_length": "2000", ...}``: every field of a config as the repr of its value
    (so ``1`` and ``1.0``, ``(32, 32)`` and ``[32, 32]`` differ); an empty dict is one field."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = repr(value)
    return out


def changed_from_base(c) -> dict:
    """The fields of ``c`` that differ from ``config.base()`` (``None``: a base field it lacks)."""
    base, values = flat(config_lib.base().to_dict()), flat(c.to_dict())
    diff = {k: v for k, v in values.items() if base.get(k) != v}
    diff.update({k: None for k in base if k not in values})
    return diff


@pytest.mark.parametrize("name", configs.NAMES + configs.EXPERIMENTS)
def test_named_recipe_builds(name):
    c = config_lib.validate(configs.get(name))
    zoo = config_lib.build_zoo(c)
    assert zoo.name == c.zoo and zoo.families
    lopt = config_lib.build_lopt(c)
    theta = config_lib.load_init_theta(c.init_from, lopt)
    run = spec.from_config(c)  # every recipe turns into a run spec
    assert run.lopt == lopt and run.config_dict() == json.loads(json.dumps(c.to_dict()))
    if c.init_from:
        # the started-from weights have the tree of the architecture's own init
        fresh = lopt.init_meta_params(jax.random.key(0))
        assert jax.tree.structure(theta) == jax.tree.structure(fresh)
        assert jax.tree.map(lambda a: a.shape, theta) == jax.tree.map(lambda a: a.shape, fresh)
    else:
        assert theta is None


def test_recipe_starting_from_another_architecture_refused():
    c = configs.get("scale_free")
    c.init_from = "hyper_small_v2"
    lopt = config_lib.build_lopt(c)
    with pytest.raises(config_lib.ConfigError, match="init_from='hyper_small_v2'"):
        config_lib.load_init_theta(c.init_from, lopt)


def test_base_is_as_recorded():
    """The configs' values below are recorded relative to this base."""
    assert flat(config_lib.base().to_dict()) == RECORDED["base"]


# ScaleFreeLOpt's settings before its defaults became the recommended optimizer's: a recipe that
# now states one of them at this value builds the optimizer it built before
OLD_SCALE_FREE_DEFAULTS = dict(
    relative=False, log_scale_bound=5.0, alpha_bound=1.5, zero_init="one", mixing_fan_cap=0.0
)


def with_old_defaults(recorded: dict) -> dict:
    """A recorded config (nested dict) with the scale-free settings it left to the old defaults
    stated, and the experimental options under their own architecture."""
    out = json.loads(json.dumps(recorded))
    lopt = out.get("lopt", {})
    if lopt.get("architecture") == "scale_free":
        lopt["config"] = {**OLD_SCALE_FREE_DEFAULTS, **lopt.get("config", {})}
        experimental = {"size_free", "matched_mixing", "agreement_gate"}
        if experimental & set(lopt["config"]):
            lopt["architecture"] = "scale_free_experimental"
    return out


def recorded_with_old_defaults(fields: dict) -> dict:
    """:func:`changed_from_base`'s fields as recorded, with the scale-free settings they left to
    the old defaults stated (and the experimental options under their own architecture)."""
    out = dict(fields)
    if out.get("lopt.architecture") != repr("scale_free"):
        return out
    for key, value in OLD_SCALE_FREE_DEFAULTS.items():
        out.setdefault(f"lopt.config.{key}", repr(value))
    out.setdefault("lopt.config", None)  # base's empty dict is gone
    if any(f"lopt.config.{k}" in out for k in ("size_free", "matched_mixing", "agreement_gate")):
        out["lopt.architecture"] = repr("scale_free_experimental")
    return out


@pytest.mark.parametrize("name", sorted(RECORDED["configs"]))
def test_config_values_are_as_recorded(name):
    """Field by field, the config is the one of the same recipe before the reorganisation (the
    shipping ``scale_free`` is the former ``scale_free_late28``, ``experiments/scale_free_first``
    the former ``scale_free``), up to scale-free settings now stated at their old defaults."""
    want = recorded_with_old_defaults(RECORDED["configs"][name])
    assert changed_from_base(configs.get(name)) == want


def test_every_experiment_is_recorded():
    """An experiment record keeps the config its run used: each one has its values on file."""
    assert set(configs.EXPERIMENTS) <= set(RECORDED["configs"])


def test_scale_free_is_the_recommended_optimizers_recipe():
    """``scale_free`` is, field by field, the chain that made ``scale_free_v6`` / ``v7``
    (``experiments/scale_free_late28``) and the config ``scale_free_v7``'s ``lopt.json`` records."""
    new = flat(configs.get("scale_free").to_dict())
    old = flat(configs.get("experiments/scale_free_late28").to_dict())
    assert new == old, {k: (new.get(k), old.get(k)) for k in new.keys() | old.keys()}
    meta = _recorded_run("scale_free_v7")
    assert meta["command"].startswith("lopt-meta-train --config=scale_free_late28 ")
    assert json.loads(json.dumps(configs.get("scale_free").to_dict())) == with_old_defaults(
        config_lib.migrate(meta["config"])
    )


# shipped weights whose run used the recipe as it is (no --config.FIELD overrides)
SHIPPED_RECIPES = {
    "scale_free_v7": "scale_free",
    "scale_free_v6": "scale_free",
    "scale_free_v5": "experiments/scale_free_late",
    "scale_free_v4": "experiments/scale_free_mup",
    "scale_free_v3": "experiments/scale_free_rel",
    "scale_free_v2": "experiments/scale_free_rel",
}


def _recorded_run(weights: str) -> dict:
    path = pathlib.Path(learned_opt.__file__).parent / "pretrained" / weights / "lopt.json"
    return json.loads(path.read_text())["metadata"]


@pytest.mark.parametrize("weights", sorted(SHIPPED_RECIPES))
def test_recipe_is_the_config_its_shipped_weights_record(weights):
    meta = _recorded_run(weights)
    assert "--config." not in meta["command"]
    c = configs.get(SHIPPED_RECIPES[weights])
    assert json.loads(json.dumps(c.to_dict())) == with_old_defaults(
        config_lib.migrate(meta["config"])
    )


def _config_imports(file: pathlib.Path) -> list[str]:
    """The config modules a config file imports (``meta_train.configs[.experiments].NAME``)."""
    found = []
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "meta_train.configs"
        ):
            found += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("meta_train.configs")]
    return found


@pytest.mark.parametrize("name", configs.NAMES)
def test_shipping_recipe_is_at_most_two_levels_from_base(name):
    """A shipping recipe calls ``config.base()`` or changes one other shipping recipe that does."""
    imports = _config_imports(CONFIGS_DIR / f"{name}.py")
    assert len(imports) <= 1, imports
    for module in imports:
        parent = module.removeprefix("meta_train.configs.")
        assert parent in configs.NAMES, f"{name} builds on {module}, not a shipping recipe"
        assert _config_imports(CONFIGS_DIR / f"{parent}.py") == [], f"{name} -> {parent} -> ..."


def test_names_are_the_files():
    files = {p.stem for p in CONFIGS_DIR.glob("*.py")} - {"__init__"}
    experiments = {p.stem for p in (CONFIGS_DIR / "experiments").glob("*.py")} - {"__init__"}
    assert set(configs.NAMES) == files and len(configs.NAMES) == len(files)
    assert set(configs.EXPERIMENTS) == {f"experiments/{n}" for n in experiments}
    for name in configs.NAMES + configs.EXPERIMENTS:
        assert configs.path(name) == str(CONFIGS_DIR / f"{name}.py")
    assert configs.path("experiments/scale_free_gate:x").endswith("scale_free_gate.py:x")
    assert configs.path("my/config.py") == "my/config.py"
    assert configs.path("__init__") == "__init__"


@pytest.mark.parametrize("name", configs.EXPERIMENTS)
def test_experiment_docstring_says_what_it_tried_and_found(name):
    doc = ast.get_docstring(ast.parse((CONFIGS_DIR / f"{name}.py").read_text()))
    assert "Outcome:" in doc and f"--config={name} " in doc, doc
    assert not re.search(r"\b(19|20)\d\d\b|\bissue\b|#\d", doc), doc


def test_unknown_name_lists_the_shipping_recipes():
    with pytest.raises(ValueError, match="unknown config 'nosuch'") as e:
        configs.get("nosuch")
    assert all(n in str(e.value) for n in configs.NAMES)
    with pytest.raises(ValueError, match="use 'experiments/scale_free_gate'"):
        configs.get("scale_free_gate")
    for name in ("__init__", "experiments/__init__", "experiments/nosuch", "../config"):
        with pytest.raises(ValueError, match="unknown config"):
            configs.get(name)


def test_command_line_resolves_an_experiment():
    """``--config=experiments/NAME`` loads the experiment's file (and its chain) by path."""
    from meta_train import cli

    argv, _ = cli.command_line(["--config=experiments/scale_free_gate", "--config.outer_steps=3"])
    assert argv[0] == "--config=" + str(CONFIGS_DIR / "experiments" / "scale_free_gate.py")
