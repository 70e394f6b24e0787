"""Speed benchmarks: python -m experiments.benchmarks.NAME [--quick]; each writes results/benchmarks/NAME.json.

    training     training epochs/s (1 and 50 seeds vmapped) and checkpoint I/O
    estimators   every estimator per (epoch, layer), batched and single, + KSG memory
    evaluate     end-to-end evaluation of the tishby run, a per-epoch loop baseline, delta-skip
    sweeps       a KDE noise sweep in one call vs separate calls; a learning-rate x seeds grid in one
                 vmapped training call vs sequential runs

``--quick`` runs tiny sizes (CI) and writes NAME_quick.json instead.
"""

import os
import platform


def machine() -> dict:
    """Where a benchmark ran: backend, cores, load average at the end, CPU architecture, JAX version."""
    import jax

    return dict(
        backend=jax.default_backend(),
        cpu_count=os.cpu_count(),
        load_average=list(os.getloadavg()),
        machine=platform.machine(),
        jax_version=jax.__version__,
    )
