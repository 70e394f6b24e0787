"""A damaged saved plane is named, set aside (never deleted) and recomputed; it no longer blocks a rerun."""

import jax
import numpy as np
import pytest

from ibjax import infoplane, models, pipeline
from ibjax.result import DamagedFile, InfoPlane


def _evaluate(out, log):
    m = models.mlp((3, 4, 2))
    params = jax.tree.map(lambda a: a[None, None], m.init(jax.random.key(0)))  # 1 run x 1 epoch
    x = np.asarray(jax.random.normal(jax.random.key(1), (64, 3)), np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    return pipeline.evaluate_arrays(
        infoplane.ApplyFns(m.apply), params, [0], x, y, "binning", {}, out=out, progress=False, log=log
    )


def test_truncated_plane_is_set_aside_and_recomputed(tmp_path):
    lines = []
    first = _evaluate(tmp_path, lines.append)
    path = pipeline.result_path(tmp_path, "binning", "layers")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # an interrupted copy, a full disk elsewhere
    with pytest.raises(DamagedFile, match="corrupt"):
        InfoPlane.load(path)
    lines.clear()
    again = _evaluate(tmp_path, lines.append)
    aside = path.with_name(path.name + ".damaged")
    assert aside.read_bytes() == data[: len(data) // 2]  # kept, not deleted
    assert any("is damaged" in ln and aside.name in ln for ln in lines)
    assert not any("settings changed" in ln for ln in lines)
    np.testing.assert_array_equal(again.i_xt, first.i_xt)
    assert InfoPlane.load(path).key == first.key  # the recomputed plane is saved in its place
