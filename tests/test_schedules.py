import numpy as np
import pytest

from ibjax import schedules


def test_log_spaced_matches_idnns():
    e = schedules.log_spaced(8000, 400)
    assert len(e) == 274 and e[0] == 0 and e[-1] == 7999
    ref = np.unique(np.logspace(0, np.log2(8000), 400, base=2).astype(int)) - 1
    np.testing.assert_array_equal(e, ref)


def test_saxe_piecewise():
    e = schedules.saxe(3000)
    assert e[:20].tolist() == list(range(20))
    assert e[20:36].tolist() == list(range(20, 100, 5))
    assert {1980, 2000, 2100, 2900} <= set(e.tolist()) and 2020 not in e


def test_specs():
    np.testing.assert_array_equal(schedules.from_spec("every:3", 10), [0, 3, 6, 9])
    np.testing.assert_array_equal(schedules.from_spec("all", 3), [0, 1, 2])
    assert len(schedules.from_spec("log:400", 8000)) == 274
    with pytest.raises(ValueError, match="schedule"):
        schedules.from_spec("fib", 10)
    with pytest.raises(ValueError, match="n_epochs"):
        schedules.all_epochs(0)
