"""``meta_train.timing.Split``: the run's compile / device / host split stays a split."""

import pytest

from meta_train import timing


@pytest.mark.parametrize(
    "wall, compile_s, device",
    [(2.0, 0.5, 1.0), (2.0, 1.5, -0.3), (2.0, 2.5, 1.0), (2.0, 0.0, 3.0), (1.0, 1.0, 0.0)],
)
def test_split_fractions_are_shares_of_the_wall_time(wall, compile_s, device):
    split = timing.Split()
    split.add(wall, compile_s, device)
    t = split.totals()
    fracs = [t["time_compile_frac"], t["time_device_frac"], t["time_host_frac"]]
    assert all(0.0 <= f <= 1.0 for f in fracs), t
    assert sum(fracs) == pytest.approx(1.0, abs=1e-3)
    assert t["time_wall_s"] == pytest.approx(wall)
    want_compile = min(max(compile_s, 0.0), wall)
    assert t["time_compile_s"] == pytest.approx(want_compile)
    assert t["time_device_s"] == pytest.approx(min(max(device, 0.0), wall - want_compile))
