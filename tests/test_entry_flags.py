"""The console entry modules define their absl flags when run, not when imported."""

import importlib
import re
import subprocess
import sys

import pytest
from absl import flags

ENTRY_MODULES = ("eval.cli", "eval.main_job", "meta_train.cli", "tasks.cli")


def test_all_entry_modules_import_in_one_process():
    # a fresh interpreter: nothing else has touched absl's global FLAGS there
    code = (
        "import importlib\n"
        "from absl import flags\n"
        f"for m in {ENTRY_MODULES!r}:\n"
        "    importlib.import_module(m)\n"
        "assert 'workdir' not in flags.FLAGS, 'a module defined flags at import'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "module, argv, expected",
    [
        ("eval.cli", ["--workdir=/w", "--seeds=2"], dict(workdir="/w", seeds=2, steps=0)),
        ("eval.main_job", ["--seeds=5"], dict(workdir="runs/quickstart", seeds=5)),
        ("tasks.cli", ["--data_dir=/d"], dict(data_dir="/d", manual_dir=None)),
    ],
)
def test_each_entry_module_defines_its_own_flags(module, argv, expected):
    fv = flags.FlagValues()
    importlib.import_module(module).define_flags(fv)
    fv(["prog", *argv])
    assert {k: fv[k].value for k in expected} == expected


def test_meta_train_requires_config_and_workdir():
    from meta_train import cli

    def parse(*args):
        argv, lopt = cli.command_line(["prog", *args])
        fv = flags.FlagValues()
        cli.define_flags(fv, argv)
        fv(argv)
        return fv, lopt

    with pytest.raises(flags.IllegalFlagValueError, match="config"):
        parse("--workdir=/w")
    with pytest.raises(flags.IllegalFlagValueError, match="workdir"):
        parse("--config=quickstart")
    fv, lopt = parse(
        "--config=quickstart",
        "--workdir=/w",
        "--config.outer_steps=7",
        "--config.lopt.config.lstm_hidden=8",
    )
    assert fv.workdir == "/w" and fv.config.outer_steps == 7 and lopt == {"lstm_hidden": 8}


def test_docstrings_name_every_config():
    import meta_train
    from meta_train import cli, configs

    for doc in (cli.__doc__, meta_train.__doc__, configs.__doc__):
        words = set(re.findall(r"\w+", doc))
        missing = [n for n in configs.NAMES if n not in words]
        assert not missing, missing


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_each_main_is_short(module):
    import inspect

    lines = inspect.getsource(importlib.import_module(module).main).splitlines()
    assert len(lines) <= 80, (module, len(lines))
