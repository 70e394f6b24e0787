"""Folders of audio clips as log-mel spectrogram datasets (the CNN study's seed data: FMA by genre).

``audio_folder(root)`` reads ``root/<class>/<clip>`` (one subfolder per class, sorted names = class
ids), resamples every clip to ``sr`` mono, cuts or zero-pads it to ``duration`` seconds, and computes
log-mel spectrograms with librosa (``librosa.feature.melspectrogram`` on the stacked clips, one call,
then ``power_to_db`` with ``ref=1`` and ``top_db=None`` so levels are comparable between clips). The
result is a ``Dataset`` of ``N x n_mels x frames x 1`` float32 images (``flat=True``: N x D) and is
cached under ``~/.cache/ibjax/audio/`` keyed by the sha256 of every clip's bytes and path, the
settings and the librosa version, so a second call reads one .npz and an edited clip is recomputed.

librosa is the ``audio`` extra: ``pip install 'ibjax[audio]'``.

    from ibjax import audio
    ds = audio.audio_folder("fma_small_by_genre", sr=22050, duration=3.0, n_mels=64)
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ibjax import io
from ibjax.data import Dataset

EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".au", ".aiff", ".m4a")


@dataclass(frozen=True)
class MelSettings:
    sr: int = 22050
    duration: float = 3.0  # seconds per clip (cut or zero-padded)
    offset: float = 0.0  # seconds skipped at the start of every clip
    n_mels: int = 64
    n_fft: int = 2048
    hop_length: int = 512

    def check(self) -> None:
        for name in ("sr", "n_mels", "n_fft", "hop_length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name, ok, valid in (("duration", lambda v: v > 0, "> 0"), ("offset", lambda v: v >= 0, ">= 0")):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or not ok(v):
                raise ValueError(f"{name} must be a finite number of seconds {valid}, got {v!r}")
        if self.n_fft > self.n_samples:
            raise ValueError(f"n_fft ({self.n_fft}) must not exceed a clip's {self.n_samples} samples (sr x duration)")

    @property
    def n_samples(self) -> int:
        return int(round(self.sr * self.duration))


def _librosa():
    try:
        import librosa
    except ImportError as e:
        raise ImportError("audio_folder needs librosa: pip install 'ibjax[audio]'") from e
    return librosa


def list_clips(root: str | os.PathLike, extensions=EXTENSIONS) -> tuple[list[Path], np.ndarray, list[str]]:
    """(clip paths, class ids, class names) of ``root/<class>/<clip>``, classes and clips sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"root={str(root)!r}: no such directory (expected one subfolder of clips per class)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise ValueError(f"root={str(root)!r}: needs at least 2 class subfolders, found {classes}")
    paths, labels = [], []
    for c, name in enumerate(classes):
        clips = sorted(p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in extensions)
        if not clips:
            raise ValueError(f"root={str(root)!r}: class folder {name!r} holds no audio file ({', '.join(extensions)})")
        paths += clips
        labels += [c] * len(clips)
    return paths, np.asarray(labels, np.int32), classes


def _key(root: Path, paths: list[Path], settings: MelSettings, version: str) -> str:
    h = hashlib.sha256(json.dumps({**asdict(settings), "librosa": version}, sort_keys=True).encode())
    for p in paths:
        h.update(str(p.relative_to(root)).encode() + b"\0")
        h.update(io.file_digest(p, "sha256").encode())
    return h.hexdigest()[:32]


def _load_clip(librosa, path: Path, s: MelSettings) -> np.ndarray:
    try:
        with warnings.catch_warnings():  # librosa's fallback notices; a failure is raised below
            warnings.simplefilter("ignore", (UserWarning, FutureWarning, DeprecationWarning))
            wave, _ = librosa.load(path, sr=s.sr, mono=True, offset=s.offset, duration=s.duration)
    except Exception as e:  # audioread / soundfile raise many types for an unreadable file
        raise ValueError(f"{path}: cannot read audio ({type(e).__name__}: {e})") from None
    if wave.size == 0:
        raise ValueError(f"{path}: no samples after offset {s.offset} s")
    out = np.zeros(s.n_samples, np.float32)
    out[: min(wave.size, s.n_samples)] = wave[: s.n_samples]
    return out


def log_mel(waves_NxS: np.ndarray, settings: MelSettings) -> np.ndarray:
    """Log-mel spectrograms in dB (ref 1, no top_db clipping) of stacked clips: N x n_mels x frames."""
    librosa = _librosa()
    mel = librosa.feature.melspectrogram(
        y=np.asarray(waves_NxS, np.float32),
        sr=settings.sr,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        n_mels=settings.n_mels,
    )
    return librosa.power_to_db(mel, ref=1.0, top_db=None).astype(np.float32)


def audio_folder(
    root: str | os.PathLike,
    *,
    sr: int = 22050,
    duration: float = 3.0,
    offset: float = 0.0,
    n_mels: int = 64,
    n_fft: int = 2048,
    hop_length: int = 512,
    flat: bool = False,
    cache: bool = True,
) -> Dataset:
    """The clips under ``root/<class>/`` as log-mel spectrograms (see the module docstring)."""
    settings = MelSettings(sr, duration, offset, n_mels, n_fft, hop_length)
    settings.check()
    root = Path(root)
    paths, y, classes = list_clips(root)
    librosa = _librosa()
    key = _key(root, paths, settings, librosa.__version__)
    cached = io.cache_dir() / "audio" / f"{key}.npz"
    if cache and cached.is_file():
        with np.load(cached) as z:
            x = z["x"]
    else:
        waves = np.stack([_load_clip(librosa, p, settings) for p in tqdm(paths, desc="audio clips", disable=None)])
        x = log_mel(waves, settings)
        if not np.isfinite(x).all():
            raise ValueError(f"root={str(root)!r}: non-finite log-mel values (a clip of NaN or inf samples?)")
        if cache:
            io.atomic_save_npz(cached, {"x": x, "y": y})
    x = x.reshape(len(x), -1) if flat else x[..., None]
    meta = {
        **asdict(settings),
        "classes": classes,
        "clips_per_class": np.bincount(y, minlength=len(classes)).tolist(),
        "librosa": librosa.__version__,
        "cache": str(cached) if cache else None,
    }
    return Dataset(x, y, "audio", str(root), meta)
