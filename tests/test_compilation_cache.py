"""The persistent compilation cache: on by default in a directory the user can move or switch off."""

import os
import subprocess
import sys

import ibjax

PROGRAM = "import ibjax, jax, jax.numpy as jnp; print(ibjax.enable_compilation_cache()); jax.jit(lambda a: jnp.sin(a) * 3)(jnp.ones(7)).block_until_ready()"


def _run(env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("IBJAX_XLA_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    return subprocess.run(
        [sys.executable, "-c", PROGRAM], env={**env, **env_extra}, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_cache_dir_default_moved_and_off(monkeypatch, tmp_path):
    monkeypatch.delenv("IBJAX_XLA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ibjax.compilation_cache_dir() == str(tmp_path / "ibjax" / "xla")
    monkeypatch.setenv("IBJAX_XLA_CACHE", str(tmp_path / "elsewhere"))
    assert ibjax.compilation_cache_dir() == str(tmp_path / "elsewhere")
    for off in ("off", "0", ""):
        monkeypatch.setenv("IBJAX_XLA_CACHE", off)
        assert ibjax.compilation_cache_dir() is None


def test_a_compile_lands_in_the_cache_and_off_writes_nothing(tmp_path):
    on = tmp_path / "on"
    assert _run({"IBJAX_XLA_CACHE": str(on)}) == str(on)
    assert any(on.iterdir())  # the jitted program was written, though it compiled in milliseconds
    assert _run({"IBJAX_XLA_CACHE": "off", "XDG_CACHE_HOME": str(tmp_path / "home")}) == "None"
    assert not (tmp_path / "home").exists()
    own = tmp_path / "own"
    assert _run({"JAX_COMPILATION_CACHE_DIR": str(own)}) == str(own)  # the user's JAX setting is kept
