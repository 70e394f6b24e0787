"""Several processes: 2 local CPU processes under jax.distributed evaluate a run as one process does.

Each process initializes ``jax.distributed`` (CPU collectives: gloo over loopback), so
``jax.devices()`` spans both processes and the engine's item axis is sharded across them. Both
evaluate the same run with binning and kde; their numbers must equal the single-process ones, and
only process 0 writes the cache chunks and the result file.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ibjax import pipeline
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig
from ibjax.result import InfoPlane

ROOT = Path(__file__).resolve().parents[1]
CFG = RunConfig(
    MLPConfig((12, 6, 4, 2)), DataConfig(name="var_u"), TrainConfig(n_epochs=20, schedule="every:5", learning_rate=0.01)
)
# 4 kept epochs; kde on 3 of them: an odd item count, padded to a whole shard per process
EVALS = (("binning", {}, "all"), ("kde", {"noise_var": 1e-2}, "list:0,5,10"))
TIMEOUT_S = 240

WORKER = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    port, pid, run_dir, out, result = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid,
                               initialization_timeout=120)
    import numpy as np
    from ibjax import pipeline
    saved = {"device_count": jax.device_count(), "process_count": jax.process_count(),
             "process_index": jax.process_index()}
    for est, opts, epochs in json.loads(sys.argv[6]):
        plane = pipeline.evaluate_runs([run_dir], est, opts, epochs=epochs, out=out, progress=False,
                                       log=lambda *_: None)
        saved.update({f"{est}/{k}": v for k, v in plane.values.items()})
    np.savez(result, **saved)
    jax.distributed.shutdown()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return pipeline.train_or_reuse(CFG, [0], tmp_path_factory.mktemp("runs"), log=lambda *_: None)[0]


def test_two_processes_give_the_single_process_numbers(run_dir, tmp_path, data_dir):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env.update(JAX_PLATFORMS="cpu", IBJAX_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    port = _free_port()
    procs = []
    try:
        for pid in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(script),
                        str(port),
                        str(pid),
                        str(run_dir),
                        str(tmp_path / f"out{pid}"),
                        str(tmp_path / f"result{pid}.npz"),
                        json.dumps(EVALS),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        logs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for pid, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"process {pid} failed (rc {p.returncode}):\n{log[-4000:]}"

    results = [dict(np.load(tmp_path / f"result{pid}.npz")) for pid in range(2)]
    for pid, r in enumerate(results):
        assert (int(r["device_count"]), int(r["process_count"]), int(r["process_index"])) == (2, 2, pid)
    for est, opts, epochs in EVALS:
        one = pipeline.evaluate_runs([run_dir], est, opts, epochs=epochs, progress=False, log=lambda *_: None)
        assert one.shape == (1, 1, 4 if epochs == "all" else 3, 3)
        for k, v in one.values.items():
            for pid, r in enumerate(results):
                np.testing.assert_allclose(r[f"{est}/{k}"], v, atol=1e-6, err_msg=f"{est} {k} process {pid}")
        # only process 0 writes: its result file holds the same numbers; process 1 wrote nothing
        saved = InfoPlane.load(pipeline.result_path(tmp_path / "out0", est))
        for k, v in one.values.items():
            np.testing.assert_allclose(saved.values[k], v, atol=1e-6)
    assert list((tmp_path / "out0" / ".cache").rglob("chunk_*.npz"))
    assert not [f for f in (tmp_path / "out1").rglob("*") if f.is_file()]
