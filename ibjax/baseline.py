"""Shuffled-label baselines: an estimator's I(T;Y) with the labels permuted, so its bias floor shows.

Permuting y breaks every dependence between T and Y while keeping both marginals, so the true I(T;Y)
of the permuted pairs is 0 and whatever an estimator reports there is its bias (plus noise) at this N,
class balance and layer. ``label_floor`` takes any ``fn(t, y) -> scalar``; ``registry_floor`` takes a
registered estimator by name. Permutations are vmapped: one compiled call for all of them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ibjax import _checks, registry


def permuted_labels(y_N, key, n_perm: int):
    """n_perm x N: y under n_perm independent uniform permutations."""
    keys = jax.random.split(key, n_perm)
    return jax.vmap(lambda k: jax.random.permutation(k, y_N))(keys)


def _mean_se(v_P):
    n = v_P.shape[0]
    return jnp.mean(v_P), (jnp.std(v_P, ddof=1) / math.sqrt(n) if n > 1 else jnp.zeros(()))


def label_floor(fn, t, y, key, *, n_perm: int = 8):
    """(mean, standard error) over ``n_perm`` label permutations of ``fn(t, y_permuted)``."""
    n_perm = _checks.check_int("n_perm", n_perm, min_value=2)
    y_N = jnp.asarray(_checks.check_labels("y", y, n=jnp.shape(t)[0]), jnp.int32)
    if y_N.ndim != 1:
        raise ValueError(f"y must have rank 1, got shape {tuple(y_N.shape)}")
    v_P = jax.vmap(lambda yp: fn(t, yp))(permuted_labels(y_N, key, n_perm))
    return _mean_se(v_P)


def registry_floor(
    name: str, t_NxD, x_NxDx, y, key, *, n_perm: int = 8, options: dict | None = None, output: str = "i_ty"
):
    """``label_floor`` for registered estimator ``name`` (deterministic-network adapters): its
    ``output`` (default i_ty) with permuted labels, options resolved as the CLI would."""
    est = registry.get(name)
    if est.noisy:
        raise ValueError(
            f"estimator {name!r} is a noisy-network estimator; registry_floor takes the "
            "deterministic ones: " + ", ".join(sorted(k for k, e in registry.REGISTRY.items() if not e.noisy))
        )
    if output not in est.outputs:
        raise ValueError(f"output must be one of {list(est.outputs)} for estimator {name!r}, got {output!r}")
    y_N = jnp.asarray(_checks.check_labels("y", y, n=t_NxD.shape[0]), jnp.int32)
    n_classes = int(jnp.max(y_N)) + 1
    settings = registry.resolve(name, options, registry.Context(t_NxD.shape[0], n_classes))
    if est.wants_classes:
        settings["n_classes"] = n_classes
    k_perm, k_est = jax.random.split(key)

    def one(t, yp):
        return est.fn(t, t.shape[-1], k_est, x_NxDx, yp, **settings)[output]

    return label_floor(jax.jit(one), t_NxD, y_N, k_perm, n_perm=n_perm)
