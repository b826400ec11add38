"""Every named recipe resolves: its config validates, and its zoo, learned optimizer and
``init_from`` weights build and agree (a recipe that names a zoo or a shipped optimizer that does
not exist, or starts from weights of another architecture, fails here rather than at run time)."""

import jax
import pytest

from meta_train import config as config_lib
from meta_train import configs


@pytest.mark.parametrize("name", configs.NAMES)
def test_named_recipe_builds(name):
    c = config_lib.validate(configs.get(name))
    zoo = config_lib.build_zoo(c)
    assert zoo.name == c.zoo and zoo.families
    lopt = config_lib.build_lopt(c)
    theta = config_lib.load_init_theta(c, lopt)
    if c.init_from:
        # the started-from weights have the tree of the architecture's own init
        fresh = lopt.init_meta_params(jax.random.key(0))
        assert jax.tree.structure(theta) == jax.tree.structure(fresh)
        assert jax.tree.map(lambda a: a.shape, theta) == jax.tree.map(lambda a: a.shape, fresh)
    else:
        assert theta is None


def test_recipe_starting_from_another_architecture_refused():
    c = configs.get("scale_free_late28")
    c.init_from = "hyper_small_v2"
    lopt = config_lib.build_lopt(c)
    with pytest.raises(config_lib.ConfigError, match="init_from='hyper_small_v2'"):
        config_lib.load_init_theta(c, lopt)
