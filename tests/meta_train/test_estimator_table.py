"""The estimator table: every name a config accepts builds its estimator."""

import pytest

from meta_train import config as config_lib
from meta_train import configs, estimators


def test_table_names_the_config_choices():
    c = configs.get("quickstart")
    for name in estimators.ESTIMATORS:  # the table is the config's list of choices
        c.estimator = name
        config_lib.validate(c)
    c.estimator = "sgd"
    with pytest.raises(config_lib.ConfigError, match="config.estimator='sgd'"):
        config_lib.validate(c)
    assert estimators.ESTIMATORS["pes"] is estimators.pes
    assert estimators.ESTIMATORS["full_es"] is estimators.full_es
