"""ibjax: information-plane analysis of neural networks in JAX.

Importing ibjax switches on JAX's persistent compilation cache (every compiled program is kept on
disk and reused by later processes with the same program, shapes, devices and versions) in
``$IBJAX_XLA_CACHE``, default ``~/.cache/ibjax/xla`` (``$XDG_CACHE_HOME/ibjax/xla``). Off:
``IBJAX_XLA_CACHE=off``. A cache directory the user set for JAX itself (``JAX_COMPILATION_CACHE_DIR``
or ``jax.config``) is kept as it is.
"""

import os

__version__ = "0.1.0"

ENV_XLA_CACHE = "IBJAX_XLA_CACHE"
OFF = ("", "0", "off", "none", "false")


def compilation_cache_dir() -> str | None:
    """Where compiled programs are cached (None: switched off)."""
    value = os.environ.get(ENV_XLA_CACHE)
    if value is not None:
        return None if value.strip().lower() in OFF else value
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "ibjax", "xla")


def enable_compilation_cache(path: str | None = None) -> str | None:
    """Switch on the persistent compilation cache in ``path`` (default ``compilation_cache_dir()``);
    returns the directory in use, or None when off. Every program is cached, however short its compile."""
    import jax

    if jax.config.jax_compilation_cache_dir and path is None:
        return jax.config.jax_compilation_cache_dir  # the user's own setting wins
    path = path or compilation_cache_dir()
    if path is None:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


enable_compilation_cache()

from ibjax import adapters as _adapters  # noqa: E402, F401 - the built-in estimator table registers itself
