"""Which epochs to keep. Epochs are 0-based indices into ``range(n_epochs)``.

Whether a kept epoch's parameters are those *before* or *after* that epoch's updates is a separate,
recorded setting (``TrainConfig.checkpoint_at``): with "before", epoch 0 is the initial network.
"""

from __future__ import annotations

import numpy as np

WHEN = ("before", "after")


def _check_n(n_epochs) -> None:
    if isinstance(n_epochs, bool) or not isinstance(n_epochs, (int, np.integer)) or n_epochs < 1:
        raise ValueError(f"n_epochs must be a positive integer, got {n_epochs!r}")


def all_epochs(n_epochs: int) -> np.ndarray:
    _check_n(n_epochs)
    return np.arange(n_epochs)


def every(n_epochs: int, n: int) -> np.ndarray:
    """Every n-th epoch, starting at 0."""
    _check_n(n_epochs)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return np.arange(0, n_epochs, n)


def log_spaced(n_epochs: int, n_points: int) -> np.ndarray:
    """IDNNs: ``unique(int(logspace(0, log2 E, K, base=2))) - 1`` (E=8000, K=400 gives 274)."""
    _check_n(n_epochs)
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    return np.unique(np.logspace(0, np.log2(n_epochs), n_points, base=2).astype(int)) - 1


def saxe(n_epochs: int) -> np.ndarray:
    """Saxe et al.: every epoch below 20, every 5th below 100, every 20th below 2000, every 100th after."""
    _check_n(n_epochs)
    e = np.arange(n_epochs)
    keep = (e < 20) | ((e < 100) & (e % 5 == 0)) | ((e < 2000) & (e % 20 == 0)) | (e % 100 == 0)
    return e[keep]


def from_spec(spec: str, n_epochs: int) -> np.ndarray:
    """Parse ``all``, ``every:N``, ``log:K`` or ``saxe``."""
    kind, _, arg = str(spec).partition(":")
    try:
        if kind == "all" and not arg:
            return all_epochs(n_epochs)
        if kind == "saxe" and not arg:
            return saxe(n_epochs)
        if kind == "every":
            return every(n_epochs, int(arg))
        if kind == "log":
            return log_spaced(n_epochs, int(arg))
    except ValueError as e:
        raise ValueError(f"schedule {spec!r}: {e}") from None
    raise ValueError(f"schedule must be 'all', 'every:N', 'log:K' or 'saxe', got {spec!r}")
