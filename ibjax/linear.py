"""Deep linear teacher-student networks (Saxe et al. 2018, Sec. 5) with exact information.

Inputs x ~ N(0, I) in ``n_rel + n_irr`` dimensions; the teacher reads only the first ``n_rel``:
y = W0 x_rel + eps, eps ~ N(0, sigma_y^2 I). A student of linear layers W_1 .. W_D, W_out is trained
on P samples by (minibatch) gradient descent on the squared error. Layer l's representation is
T_l = A_l x + Z with A_l = W_l ... W_1 and measurement noise Z ~ N(0, sigma^2 I), so everything is
Gaussian and exact (bits):

    I(X;T)            = 1/2 log det(I + A A^T / sigma^2)
    I(X_rel;T)        = 1/2 log det(A A^T + sigma^2 I) - 1/2 log det(A_i A_i^T + sigma^2 I)
    I(X_irr;T | X_rel) = 1/2 log det(I + A_i A_i^T / sigma^2)

(A_i: the columns of A on the irrelevant inputs), which add up to I(X;T) (chain rule). The
generalisation error is exact too: E||W x - y||^2 = ||W - [W0, 0]||_F^2 + n_out sigma_y^2, W the
student's end-to-end map.

``make_train`` returns a pure ``train(key, n_samples, init_scale)`` (one ``lax.scan`` over the kept
steps, traced settings: vmap it over seeds and grid points) giving per kept step the three
informations of every layer and the training and generalisation errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

LN2 = float(np.log(2.0))


@dataclass(frozen=True)
class Teacher:
    n_rel: int = 30
    n_irr: int = 70
    n_out: int = 10
    sigma_y: float = 0.5  # label noise std

    @property
    def n_in(self) -> int:
        return self.n_rel + self.n_irr


def _logdet_plus(a_HxD, sigma2):
    """log det(I + A A^T / sigma^2) via the smaller Gram matrix (nats)."""
    g = a_HxD @ a_HxD.T if a_HxD.shape[0] <= a_HxD.shape[1] else a_HxD.T @ a_HxD
    return jnp.linalg.slogdet(jnp.eye(g.shape[0], dtype=g.dtype) + g / sigma2)[1]


def informations(a_HxD, n_rel: int, sigma2: float):
    """(I(X;T), I(X_rel;T), I(X_irr;T | X_rel)) in bits of T = A x + N(0, sigma2 I), x ~ N(0, I)."""
    total = _logdet_plus(a_HxD, sigma2) / (2 * LN2)
    irr = _logdet_plus(a_HxD[:, n_rel:], sigma2) / (2 * LN2)
    return total, total - irr, irr


def teacher_weights(key, t: Teacher):
    """W0 (n_out x n_rel), entries N(0, 1 / n_rel): each output has unit signal variance."""
    return jax.random.normal(key, (t.n_out, t.n_rel)) / np.sqrt(t.n_rel)


def sample(key, w0, t: Teacher, n: int):
    """n samples (x_NxD, y_NxO) of the teacher."""
    kx, ke = jax.random.split(key)
    x = jax.random.normal(kx, (n, t.n_in))
    return x, x[:, : t.n_rel] @ w0.T + t.sigma_y * jax.random.normal(ke, (n, t.n_out))


def init_student(key, widths, init_scale):
    """Weights W_l (out x in) with entries N(0, init_scale^2 / fan_in)."""
    keys = jax.random.split(key, len(widths) - 1)
    return [jax.random.normal(k, (o, i)) * init_scale / np.sqrt(i) for k, i, o in zip(keys, widths[:-1], widths[1:])]


def end_to_end(ws):
    """Products A_1 = W_1, A_2 = W_2 W_1, ...: one per layer (the last is the network's map)."""
    out, a = [], ws[0]
    out.append(a)
    for w in ws[1:]:
        a = w @ a
        out.append(a)
    return out


def generalisation_error(ws, w0, t: Teacher):
    """Exact expected squared error per sample on fresh teacher data."""
    w_full = jnp.concatenate([w0, jnp.zeros((t.n_out, t.n_irr), w0.dtype)], axis=1)
    return jnp.sum((end_to_end(ws)[-1] - w_full) ** 2) + t.n_out * t.sigma_y**2


def _loss(ws, x, y, mask):
    r = x @ end_to_end(ws)[-1].T - y
    return 0.5 * jnp.sum(mask[:, None] * r**2) / jnp.maximum(mask.sum(), 1.0)


@dataclass(frozen=True)
class Setup:
    teacher: Teacher = Teacher()
    hidden: tuple = (100, 100)  # widths of the hidden layers
    max_samples: int = 400  # P_max: the data array's size; a grid point uses its first P
    learning_rate: float = 0.05
    batch_size: int = 0  # 0: full-batch gradient descent; else samples per step, drawn with replacement
    sigma2: float = 1.0  # measurement noise of T
    kept_steps: tuple = (0, 10, 100, 1000)  # steps after which the informations are measured


def make_train(s: Setup):
    """``train(key, n_samples, init_scale) -> dict`` of K x ... arrays at ``s.kept_steps`` (see module)."""
    t = s.teacher
    widths = (t.n_in, *s.hidden, t.n_out)
    kept = np.asarray(s.kept_steps, np.int64)
    if kept.ndim != 1 or kept.size < 2 or kept[0] < 0 or np.any(np.diff(kept) <= 0):
        raise ValueError(f"kept_steps must be increasing integers >= 0, got {s.kept_steps}")
    starts = np.concatenate([[0], kept[:-1]]).astype(np.int32)

    def step(carry, i, x, y, mask, key):
        ws = carry
        if s.batch_size:
            idx = jax.random.randint(jax.random.fold_in(key, i), (s.batch_size,), 0, jnp.sum(mask).astype(jnp.int32))
            g = jax.grad(_loss)(ws, x[idx], y[idx], jnp.ones(s.batch_size))
        else:
            g = jax.grad(_loss)(ws, x, y, mask)
        return [w - s.learning_rate * gw for w, gw in zip(ws, g)]

    def measure(ws, w0, x, y, mask):
        a = end_to_end(ws)[:-1]  # hidden layers
        info = jnp.stack([jnp.stack(informations(al, t.n_rel, s.sigma2)) for al in a])  # L x 3
        return {
            "i_xt_L": info[:, 0],
            "i_rel_L": info[:, 1],
            "i_irr_L": info[:, 2],
            "train_error": 2 * _loss(ws, x, y, mask),
            "gen_error": generalisation_error(ws, w0, t),
            "teacher_norm2": jnp.sum(w0**2),
        }

    def train(key, n_samples, init_scale):
        k_teacher, k_data, k_init, k_steps = jax.random.split(key, 4)
        w0 = teacher_weights(k_teacher, t)
        x, y = sample(k_data, w0, t, s.max_samples)
        mask = (jnp.arange(s.max_samples) < n_samples).astype(x.dtype)
        ws = init_student(k_init, widths, init_scale)

        def segment(ws, bounds):
            lo, hi = bounds
            ws = jax.lax.fori_loop(lo, hi, lambda i, w: step(w, i, x, y, mask, k_steps), ws)
            return ws, measure(ws, w0, x, y, mask)

        _, out = jax.lax.scan(segment, ws, (jnp.asarray(starts), jnp.asarray(kept, jnp.int32)))
        return out

    return train


@partial(jax.jit, static_argnames=("setup",))
def train_grid(keys_S, n_samples_G, init_scale_G, *, setup: Setup):
    """Every (grid point, seed) in one call: arrays G x S x K x ..."""
    train = make_train(setup)
    over_seeds = jax.vmap(train, in_axes=(0, None, None))
    return jax.vmap(over_seeds, in_axes=(None, 0, 0))(keys_S, n_samples_G, init_scale_G)


def teacher_student(
    sizes_G,
    inits_G,
    seeds: int,
    kept_steps_K,
    *,
    hidden=(100, 100),
    batch_size: int = 0,
    learning_rate: float = 0.05,
    sigma_y: float = 0.5,
    n_rel: int = 30,
    n_irr: int = 70,
    n_out: int = 10,
    sigma2: float = 1.0,
    seed: int = 0,
) -> dict:
    """Deep linear teacher-student networks with exact information (Saxe et al. 2018, Sec. 5):
    a teacher y = W0 x_rel + N(0, sigma_y^2) on the first ``n_rel`` of n_rel + n_irr Gaussian inputs, a linear
    student with ``hidden`` widths trained on P = sizes_G[g] samples from initial weights of scale inits_G[g]
    (/ sqrt(fan in)) by gradient descent (``batch_size`` 0: full batch, else minibatch SGD), measured after each
    of ``kept_steps_K`` with measurement noise of variance ``sigma2`` on every hidden layer. Every (grid point,
    seed) in one vmapped call. Returns numpy arrays G x S x K x ...: "i_xt_L", "i_rel_L", "i_irr_L" (bits, per
    hidden layer: I(X;T), I(X_rel;T), I(X_irr;T | X_rel)), "train_error", "gen_error" (exact), "teacher_norm2"
    (||W0||^2) and "excess" = (gen_error - n_out sigma_y^2) / ||W0||^2."""
    teacher = Teacher(n_rel, n_irr, n_out, sigma_y)
    kept = tuple(int(k) for k in kept_steps_K)
    setup = Setup(teacher, tuple(hidden), int(np.max(sizes_G)), learning_rate, batch_size, sigma2, kept)
    keys = jax.random.split(jax.random.key(seed), seeds)
    sizes_G, inits_G = np.asarray(sizes_G, np.int32), np.asarray(inits_G, np.float32)
    res = jax.tree.map(np.asarray, train_grid(keys, sizes_G, inits_G, setup=setup))
    res["excess"] = (res["gen_error"] - n_out * sigma_y**2) / res["teacher_norm2"]  # / ||W0||^2 of each teacher
    return res
