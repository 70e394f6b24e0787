"""Where the time of a block went: JAX's compile events (``compile_clock``), and the seconds spent
loading and writing files (``phase_clock``, fed by the library's readers and writers).

    with compile_clock() as c:
        pipeline.evaluate_runs(...)
    c["seconds"], c["programs"]     # tracing + lowering + XLA compile seconds; programs compiled
    c["by_name"]["jit(evaluate_chunk)"]   # how many of them were the evaluation engine's

    with phase_clock() as p:
        pipeline.evaluate_runs(...)
    p["load"], p["write"]           # seconds in run/data/plane loads and in (atomic) file writes
    p["runs trained"], p["planes reused"]   # what was done from scratch and what was found done

The experiments' harness splits every summary's time with them (load / compile / compute / write /
plot); tests and benchmarks count the programs a code path compiles (e.g. delta-skip's rounds reuse a few bucket-sized programs).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import threading
import time

COMPILE_EVENTS = (
    "/jax/core/compile/backend_compile_duration",
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
)


@contextlib.contextmanager
def compile_clock():
    """Seconds JAX spent tracing, lowering and compiling inside the block (its monitoring events), and
    the programs lowered to XLA, in all and by name (a persistent-cache hit still lowers, so it is
    counted; a call that finds its program in jit's in-memory cache is not, nor is ``eval_shape``)."""
    from jax import monitoring

    acc = {"seconds": 0.0, "programs": 0, "by_name": collections.Counter(), "on": True}

    def listen(event, duration, fun_name=None, **_):
        if acc["on"] and event in COMPILE_EVENTS:
            acc["seconds"] += duration
            if event == COMPILE_EVENTS[2]:
                acc["programs"] += 1
                acc["by_name"][str(fun_name)] += 1

    monitoring.register_event_duration_secs_listener(listen)
    try:
        yield acc
    finally:
        acc["on"] = False
        unregister = getattr(monitoring, "unregister_event_duration_listener", None)
        if unregister is not None:
            unregister(listen)


_CLOCKS: list[collections.Counter] = []  # the phase clocks open now
_NESTED = threading.local()  # a write inside a load (or a load inside a load) counts once


@contextlib.contextmanager
def phase_clock():
    """Seconds spent in ``phase(name)`` blocks (``"load"``, ``"write"``) while the block runs, by name."""
    acc = collections.Counter()
    _CLOCKS.append(acc)
    try:
        yield acc
    finally:
        _CLOCKS.remove(acc)


@contextlib.contextmanager
def phase(name: str):
    """Count the block's wall seconds as ``name`` in every open ``phase_clock`` (the outermost phase only)."""
    outer = not getattr(_NESTED, "depth", 0)
    _NESTED.depth = getattr(_NESTED, "depth", 0) + 1
    t0 = time.perf_counter()
    try:
        yield
    finally:
        _NESTED.depth -= 1
        if outer:
            for acc in list(_CLOCKS):
                acc[name] += time.perf_counter() - t0


def tally(name: str, n: int = 1) -> None:
    """Count ``n`` of ``name`` (``"runs trained"``, ``"planes reused"``, ...) in every open ``phase_clock``:
    what a timed run did from scratch and what it found done."""
    for acc in list(_CLOCKS):
        acc[name] += n


def phased(name: str):
    """Decorator: the function's calls are ``phase(name)`` blocks."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*a, **k):
            with phase(name):
                return fn(*a, **k)

        return inner

    return wrap


def best_of(fn, repeats: int):
    """(result of a first run, its wall seconds, then the fastest of ``repeats`` more runs: wall and process
    CPU seconds, and the slowest run's wall seconds; with repeats 0, the first run's). The fastest run is the one
    least slowed by other load; fastest to slowest is how far load moved the time."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
    warm = [] if repeats else [(cold, cold_cpu)]
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        warm.append((time.perf_counter() - t0, time.process_time() - c0))
    return result, cold, min(w for w, _ in warm), min(c for _, c in warm), max(w for w, _ in warm)
