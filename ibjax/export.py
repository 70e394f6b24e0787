"""Results out: TensorBoard scalars and tables of an ``InfoPlane``.

    export.tensorboard(plane, "logs/run0")                     # beside the run's own training curves
    export.table(plane, "results/x/infoplane_kde.csv")         # InfoPlane.to_dataframe, written atomically

TensorBoard: one scalar per (output, T) by epoch, tagged ``infoplane/<estimator>/<output>/<T>``
(``i_xt``, ``i_ty``, bounds and standard errors where the estimator has them); with several runs
each gets its own subdirectory (its run id), with a sweep each setting its own tag prefix. An ibjax
run directory's per-epoch metrics (``metrics=``: train_loss, test_acc, ...) can be logged beside
them. Each event file is built in memory and written atomically (``ibjax.io``); TensorBoard reads
every ``*tfevents*`` file of a directory, so point ``log_dir`` at the run's own log directory.
"""

from __future__ import annotations

import io as _pyio
import socket
import time
from pathlib import Path

import numpy as np

from ibjax import io
from ibjax.result import InfoPlane

EXTRA = "pip install 'ibjax[io]'"


def _event_pb2():
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError:
        raise ImportError(f"writing TensorBoard event files needs tensorboard: {EXTRA}") from None
    return event_pb2, summary_pb2, RecordWriter


def _tag(t: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(t))


def tensorboard(plane: InfoPlane, log_dir, *, metrics: dict | None = None, prefix: str = "infoplane") -> list[Path]:
    """Write the plane's values as scalars by epoch under ``log_dir``; returns the event files written.
    ``metrics``: per-epoch arrays (index = epoch), or a list of them, one per run, logged as ``train/<name>``."""
    event_pb2, summary_pb2, RecordWriter = _event_pb2()
    g, s, _, n_t = plane.shape
    names = list(plane.layer_names) or [f"T {i + 1}" for i in range(n_t)]
    runs = list(plane.run_ids) or [f"run{i}" for i in range(s)]
    per_run = metrics if isinstance(metrics, (list, tuple)) else [metrics] * s
    if len(per_run) != s:
        raise ValueError(f"metrics lists {len(per_run)} runs, the plane has {s}")
    written = []
    for si in range(s):
        buf = _pyio.BytesIO()
        w = RecordWriter(buf)
        w.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        for gi in range(g):
            point = "" if g == 1 else "/" + ",".join(f"{k}={v[gi]}" for k, v in plane.sweep.items())
            for ei, epoch in enumerate(plane.epochs):
                values = [
                    summary_pb2.Summary.Value(
                        tag=f"{prefix}/{plane.estimator}{point}/{k}/{_tag(names[li])}",
                        simple_value=float(v[gi, si, ei, li]),
                    )
                    for k, v in plane.values.items()
                    for li in range(n_t)
                ]
                w.write(
                    event_pb2.Event(
                        wall_time=time.time(), step=int(epoch), summary=summary_pb2.Summary(value=values)
                    ).SerializeToString()
                )
        for name, arr in (per_run[si] or {}).items():
            arr = np.asarray(arr)
            if arr.ndim != 1:
                continue  # per-layer metrics (gradient stats) are not one scalar per epoch
            for epoch, v in enumerate(arr):
                w.write(
                    event_pb2.Event(
                        wall_time=time.time(),
                        step=epoch,
                        summary=summary_pb2.Summary(
                            value=[summary_pb2.Summary.Value(tag=f"train/{_tag(name)}", simple_value=float(v))]
                        ),
                    ).SerializeToString()
                )
        d = Path(log_dir) / (_tag(runs[si]) if s > 1 else "")
        path = d / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.ibjax.{plane.key or 'plane'}.{si}"
        io.atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    return written


def table(plane: InfoPlane, path) -> Path:
    """The long-format table (``InfoPlane.to_dataframe``) as .csv or .parquet, written atomically."""
    path = Path(path)
    df = plane.to_dataframe()
    if path.suffix == ".csv":
        io.atomic_write_bytes(path, df.to_csv(index=False).encode())
    elif path.suffix == ".parquet":
        buf = _pyio.BytesIO()
        df.to_parquet(buf, index=False)
        io.atomic_write_bytes(path, buf.getvalue())
    else:
        raise ValueError(f"table path must end in .csv or .parquet, got {str(path)!r}")
    return path
