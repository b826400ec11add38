"""Registry: named tasks, zoos, suites; the held-out suite is disjoint from every zoo."""

import jax
import numpy as np
import pytest

import tasks
from tasks import common


def test_names_get_and_unknown_name():
    names = tasks.names()
    assert "mlp_mnist8_w32" in names and len(names) == len(set(names))
    for n in names:
        assert tasks.get(n).name == n
    with pytest.raises(KeyError, match="mlp_mnist8_w32"):  # lists the known names
        tasks.get("mlp_nonexistent")
    with pytest.raises(KeyError, match="quickstart"):
        tasks.zoo("huge")
    with pytest.raises(KeyError, match="heldout"):
        tasks.suite("nope")


def test_zoo_and_suite_names():
    assert {"quickstart", "small", "mulo", "pod"} <= set(tasks.zoo_names())
    assert {"heldout", "embedded_heldout"} <= set(tasks.suite_names())


def test_heldout_suite_size_and_diversity():
    suite = tasks.suite("heldout")
    assert len(suite) >= 20
    assert len({t.name for t in suite}) == len(suite)
    assert len({t.default_steps for t in suite}) >= 3  # several horizons
    kinds = {common.arch_key(t)[0] for t in suite}
    assert {"ImageMLPTask", "ConvTask", "AutoencoderTask", "CharLMTask", "QuadraticTask"} <= kinds
    datasets = {getattr(t, "dataset", None) for t in suite}
    assert {"mnist", "fashion_mnist", "mnist1d", "tiny_shakespeare"} <= datasets


@pytest.mark.parametrize("suite_name", ["heldout", "char_lm_heldout"])
@pytest.mark.parametrize("zoo_name", tasks.zoo_names())
def test_heldout_disjoint_from_every_zoo(zoo_name, suite_name):
    zoo = tasks.zoo(zoo_name)
    zoo_arch = zoo.arch_keys()
    support = [t for fam, _ in zoo.families if hasattr(fam, "support") for t in fam.support()]
    zoo_names = {t.name for t in support}
    zoo_groups = {t.group_key for t in support}
    for t in tasks.suite(suite_name):
        assert common.arch_key(t) not in zoo_arch, t.name
        assert t.name not in zoo_names and t.group_key not in zoo_groups, t.name
        assert not any(fam.contains(t) for fam, _ in zoo.families), t.name


@pytest.mark.parametrize("zoo_name", tasks.zoo_names())
def test_zoo_samples_lie_in_its_declared_support(zoo_name):
    zoo = tasks.zoo(zoo_name)
    arch = zoo.arch_keys()
    seen = set()
    for i in range(40):
        fam, task = zoo.sample_with_family(jax.random.key(i))
        assert common.arch_key(task) in arch
        assert fam.contains(task) and zoo.family_of(task).contains(task)
        seen.add(fam.name)
        assert isinstance(task, tasks.Task)
    assert len(seen) >= min(2, len(zoo.families))
    # Sampling is a deterministic function of the key.
    assert zoo.sample(jax.random.key(5)).name == zoo.sample(jax.random.key(5)).name


@pytest.mark.slow
def test_embedded_heldout_needs_no_prepared_data(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # an empty data dir
    suite = tasks.suite("embedded_heldout")
    assert 4 <= len(suite) <= 6
    heldout = {t.name for t in tasks.suite("heldout")}
    quick = tasks.zoo("quickstart").arch_keys()
    for t in suite:
        assert t.name in heldout and common.arch_key(t) not in quick
        d = t.load_data()
        loss = t.loss(t.init(jax.random.key(0)), jax.random.key(1), t.batch(jax.random.key(2), d))
        assert np.isfinite(float(loss))


def test_quickstart_is_embedded(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    for i in range(20):
        task = tasks.zoo("quickstart").sample(jax.random.key(i))
        task.load_data()  # would raise DatasetNotPreparedError for a tfds dataset


def test_group_key_shared_by_equal_static_fields():
    fam = tasks.registry.MLP_IMAGE
    a = fam.sample(jax.random.key(0))
    b = fam.sample_arrays(jax.random.key(1), a)
    assert a.group_key == b.group_key and float(a.init_scale) != float(b.init_scale)
    assert 0.5 <= float(b.init_scale) <= 2.0
    assert tasks.with_batch_size(a, 16).group_key != a.group_key
    assert common.arch_key(tasks.with_batch_size(a, 16)) == common.arch_key(a)


def test_loss_normalizers_are_trivial_predictor_losses():
    import math

    assert tasks.get("mlp_mnist8_w32").loss_normalizer == pytest.approx(math.log(10))
    assert tasks.get("lm_shakespeare_s32_w32_d2").loss_normalizer == pytest.approx(math.log(65))
    lr = tasks.get("linreg_d16_n0.1_b32")
    batch = lr.batch(jax.random.key(0), {}, size=20000)
    zero = {"w": np.zeros(16, np.float32), "b": np.float32(0)}
    # Predicting 0 costs E[y^2]/2 = (sum_i (w*_i f_i)^2 + s^2)/2 (closed form for this task) ...
    w, f = np.asarray(lr.w_true), np.asarray(lr.feature_scale)
    exact = 0.5 * (np.sum((w * f) ** 2) + lr.noise**2)
    assert float(lr.loss(zero, None, batch)) == pytest.approx(exact, rel=0.05)
    # ... whose expectation over w* ~ N(0, I/dim) at unit feature scales is the normaliser.
    assert lr.loss_normalizer == pytest.approx(0.5 * (1 + lr.noise**2))


def test_validation_suite_is_not_heldout():
    """Snapshots are chosen on the validation suites; they must share no task with ``heldout``."""
    heldout = {t.name for t in tasks.suite("heldout")}
    val = {t.name for t in tasks.suite("validation")}
    assert len(val) == 4 and not val & heldout
    assert all(tasks.get(n).default_steps == 2000 for n in val)
    broad = {t.name for t in tasks.suite("validation_broad")}
    assert len(broad) == 7 and val < broad and not broad & heldout
    scale = {t.name for t in tasks.suite("validation_scale")}
    assert len(scale) == 12 and broad < scale and not scale & heldout


def test_char_lm_suites_against_the_specialist_zoo():
    """The specialist chooses its snapshot on members of its own family and is judged on sizes
    it never saw, trained 3-5x longer than its longest meta-training episode."""
    from meta_train import configs

    zoo = tasks.zoo("char_lm")
    family = zoo.families[0][0]
    assert all(family.contains(t) for t in tasks.suite("char_lm_validation"))
    long_seq = tasks.zoo("char_lm_long_seq").families[0][0]
    validation_long_seq = tasks.suite("char_lm_validation_long_seq")
    assert all(long_seq.contains(t) for t in validation_long_seq)
    assert not family.contains(validation_long_seq[-1])  # the member the char_lm zoo lacks
    wide = tasks.zoo("char_lm_wide").families[0][0]
    validation_wide = tasks.suite("char_lm_validation_wide")
    assert all(wide.contains(t) for t in validation_wide)
    assert not family.contains(validation_wide[-1])
    deep = tasks.zoo("char_lm_deep").families[0][0]
    validation_deep = tasks.suite("char_lm_validation_deep")
    assert validation_deep[:3] == validation_wide and all(deep.contains(t) for t in validation_deep)
    assert not wide.contains(validation_deep[-1])
    long_seq_default = tasks.zoo("char_lm_long_seq_default").families[0][0]
    validation_wide_long_seq = tasks.suite("char_lm_validation_wide_long_seq")
    assert validation_wide_long_seq == validation_wide + validation_long_seq[-1:]
    assert all(long_seq_default.contains(t) for t in validation_wide_long_seq)
    assert not wide.contains(validation_wide_long_seq[-1])
    recipe = configs.get("char_lm_specialist")
    assert recipe.zoo == "char_lm"
    heldout = tasks.suite("char_lm_heldout")
    wide_zoo, deep_zoo = tasks.zoo("char_lm_wide"), tasks.zoo("char_lm_deep")
    long_seq_zoo = tasks.zoo("char_lm_long_seq_default")
    assert {common.arch_key(t)[0] for t in heldout} == {"CharLMTask"}
    for t in heldout:
        assert not any(
            z.families[0][0].contains(t) for z in (zoo, wide_zoo, deep_zoo, long_seq_zoo)
        )
        assert 3 * recipe.episode.max_length <= t.default_steps <= 5 * recipe.episode.max_length
