"""An information plane does not depend on how its items were split: not on the device count, not on
the chunk size (which follows the memory budget, i.e. the free memory of the machine).

A vmapped batch of items changes XLA:CPU's matmul blocking with the batch shape, which moves an
activation by an ulp; at a bin edge that is another bin, and a counting estimator's plane changes
(before the engine computed a device's items one at a time, a differently split batch changed
6.7e-4 bits at 2 of 270 cells of the tishby --quick run). The planes below come from 12 "epochs" of
the default 12-10-7-5-4-3-2 tanh network on all 4096 var_u inputs, with weights scaled from 0.5x to
6x their initialisation so that the layers span the linear to the saturated regime.
"""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from ibjax import infoplane, pipeline, registry
from ibjax.config import MLPConfig
from ibjax.data import var_u

EVALS = {  # name -> (model settings, estimator options)
    "binning": ({}, {"n_bins": 30}),
    "kde": ({}, {"noise_var": 0.1}),
    "exact": ({"quant_bits": 4}, {"levels": 16}),
}
N_EPOCHS = 12


def _params(model):
    keys = jax.random.split(jax.random.key(3), N_EPOCHS)
    scale = np.linspace(0.5, 6.0, N_EPOCHS, dtype=np.float32)
    p = jax.vmap(model.init)(keys)
    return jax.tree.map(lambda a: np.asarray(a) * scale.reshape((-1,) + (1,) * (a.ndim - 1)), p)


def planes(x, y, one_item_chunks=False) -> dict:
    out = {}
    for name, (model_kw, opts) in EVALS.items():
        cfg = MLPConfig(**model_kw)
        m = cfg.build()
        per_item = infoplane.item_bytes(registry.get(name), opts, len(x), cfg.widths[1:], 1, 1)
        memory_gb = 1.5 * per_item / 2**30 if one_item_chunks else None
        params = jax.tree.map(lambda a: a[None], _params(m))
        plane = pipeline.evaluate_arrays(
            m, params, np.arange(N_EPOCHS), x, y, name, opts, run_ids=["r0"], memory_gb=memory_gb, progress=False,
            log=lambda *_: None,
        )  # fmt: skip
        out.update({f"{name}_{k}": v for k, v in plane.values.items()})
    return out


@pytest.fixture(scope="module")
def inputs(data_dir):
    ds = var_u(data_dir / "var_u.mat")
    return ds.x, ds.y


def planes_on(n_devices: int, x, y, tmp) -> dict:
    """``planes`` in a fresh process that sees ``n_devices`` CPU devices."""
    np.savez(tmp / "xy.npz", x=x, y=y)
    script = textwrap.dedent(f"""
        import sys, jax, numpy as np
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        jax.config.update("jax_numpy_rank_promotion", "raise")
        assert jax.device_count() == {n_devices}, jax.devices()
        from test_device_invariance import planes
        z = np.load({str(tmp / "xy.npz")!r})
        np.savez({str(tmp / "planes.npz")!r}, **planes(z["x"], z["y"]))
        """)
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_devices}", JAX_PLATFORMS="cpu")
    env.pop("JAX_NUM_CPU_DEVICES", None)
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(tmp / "planes.npz"))


@pytest.fixture(scope="module")
def one_device(inputs, tmp_path_factory):
    """On one device: in this process when it has one (an experiment's entry point run earlier in the
    same worker may have given it one per core), else in a fresh one."""
    if jax.device_count() == 1:
        return planes(*inputs)
    return planes_on(1, *inputs, tmp_path_factory.mktemp("one_device"))


def _assert_same(got, want):
    for k, v in want.items():
        if k.startswith(("binning", "exact")):
            assert np.array_equal(got[k], v), f"{k}: {int((got[k] != v).sum())} cell(s) differ"
        else:
            np.testing.assert_allclose(got[k], v, rtol=0, atol=1e-5, err_msg=k)


def test_planes_are_the_same_on_one_and_four_devices(inputs, one_device, tmp_path):
    x, y = inputs
    four = planes_on(4, x, y, tmp_path)
    assert four.keys() == one_device.keys()
    _assert_same(four, one_device)


def test_planes_do_not_depend_on_the_chunk_size(inputs, one_device):
    # a budget that fits one item per chunk against the default (every item in one chunk)
    small = planes(*inputs, one_item_chunks=True)
    _assert_same(small, one_device)
