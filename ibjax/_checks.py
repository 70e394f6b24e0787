"""Input checks for the public boundary.

Every check raises ``ValueError`` naming the argument, the offending value and what would be
valid. Checks that need array *values* (finiteness, integer labels) run only on concrete arrays:
under ``jit``/``vmap`` the values are tracers and the caller is responsible (the public functions
are normally called eagerly with concrete inputs, then jit internally).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np


def is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def as_array(name: str, x: Any, *, ndim: int | tuple[int, ...] | None = None, min_ndim: int | None = None):
    """Return ``x`` as an array (jax arrays and tracers pass through), checking its rank."""
    if not hasattr(x, "shape"):
        try:
            x = np.asarray(x)
        except Exception as e:  # pragma: no cover - exotic inputs
            raise ValueError(f"{name} must be an array, got {type(x).__name__}") from e
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            raise ValueError(f"{name} must have rank {' or '.join(map(str, allowed))}, got shape {tuple(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have rank >= {min_ndim}, got shape {tuple(x.shape)}")
    if any(s == 0 for s in x.shape):
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    return x


def check_finite(name: str, x: Any) -> None:
    if is_traced(x):
        return
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.number) and a.dtype != np.bool_:
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating):
        bad = ~np.isfinite(a)
        if bad.any():
            raise ValueError(f"{name} contains {int(bad.sum())} NaN/inf value(s); all values must be finite")


def check_samples(name: str, x: Any, *, feature_axis: bool = True):
    """An array of samples: shape (..., N, D) when ``feature_axis`` else (..., N); finite."""
    x = as_array(name, x, min_ndim=2 if feature_axis else 1)
    check_finite(name, x)
    return x


def samples_2d(name: str, x: Any):
    """Finite samples as an (N, D) array; a rank-1 array is read as N scalar samples (N, 1)."""
    x = as_array(name, x, ndim=(1, 2))
    check_finite(name, x)
    return x[:, None] if x.ndim == 1 else x


def check_labels(name: str, y: Any, n: int | None = None):
    """Integer class ids, shape (..., N); values must be whole numbers >= 0."""
    y = as_array(name, y, min_ndim=1)
    if n is not None and y.shape[-1] != n:
        raise ValueError(
            f"{name} must have {n} entries along its last axis to match the samples, got shape {tuple(y.shape)}"
        )
    if not is_traced(y):
        a = np.asarray(y)
        if np.issubdtype(a.dtype, np.floating):
            if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
                raise ValueError(f"{name} must hold integer class ids, got non-integer values (dtype {a.dtype})")
        elif not np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_:
            raise ValueError(f"{name} must hold integer class ids, got dtype {a.dtype}")
        if a.size and a.min() < 0:
            raise ValueError(f"{name} must hold class ids >= 0, got minimum {a.min()}")
    return y


def check_same_n(name_a: str, a: Any, name_b: str, b: Any, *, axis_a: int = -2, axis_b: int = -2) -> None:
    if a.shape[axis_a] != b.shape[axis_b]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of samples, got {a.shape[axis_a]} and {b.shape[axis_b]}"
        )


def _scalar_values(x: Any):
    if is_traced(x):
        return None
    return np.asarray(x, dtype=np.float64).ravel()


def check_positive(name: str, x: Any, *, allow_zero: bool = False) -> None:
    v = _scalar_values(x)
    if v is None:
        return
    ok = (v >= 0) if allow_zero else (v > 0)
    if not np.all(np.isfinite(v)) or not np.all(ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {x!r}")


def check_int(name: str, x: Any, *, min_value: int, max_value: int | None = None) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {min_value}, got {x!r}")
    if x < min_value or (max_value is not None and x > max_value):
        hi = "" if max_value is None else f" and <= {max_value}"
        raise ValueError(f"{name} must be >= {min_value}{hi}, got {x}")
    return int(x)


def check_choice(name: str, x: Any, choices) -> None:
    if x not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {x!r}")


def log_base(base: Any) -> float:
    """ln(base), for converting nats to the requested unit (base 2 = bits, e = nats)."""
    if isinstance(base, str) or not np.isfinite(base) or base <= 0 or base == 1:
        raise ValueError(f"base must be a positive number other than 1 (2 for bits, e for nats), got {base!r}")
    return math.log(base)
