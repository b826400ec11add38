"""The estimator table: every name a config accepts builds its estimator."""

from meta_train import config as config_lib
from meta_train import estimators


def test_table_names_the_config_choices():
    assert tuple(estimators.ESTIMATORS) == config_lib.ESTIMATORS
    assert estimators.ESTIMATORS["pes"] is estimators.pes
    assert estimators.ESTIMATORS["full_es"] is estimators.full_es
