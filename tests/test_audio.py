"""ibjax.audio: a folder of clips per class as log-mel spectrograms, on clips generated here."""

import wave

import librosa
import numpy as np
import pytest

from ibjax import audio

SR_FILE = 16000


def _write(path, freq, seconds=0.5, phase=0.0, noise=0.0, seed=0):
    t = np.arange(int(SR_FILE * seconds)) / SR_FILE
    x = 0.5 * np.sin(2 * np.pi * freq * t + phase) + noise * np.random.default_rng(seed).standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR_FILE)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.fixture
def clips(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "genres"
    for i in range(3):
        _write(root / "high" / f"h{i}.wav", 3000, phase=i, noise=0.01, seed=i)
        _write(root / "low" / f"l{i}.wav", 300, phase=i, noise=0.01, seed=10 + i)
    _write(root / "low" / "short.wav", 300, seconds=0.25)  # zero-padded to the clip length
    (root / "low" / "notes.txt").write_text("not audio")  # ignored: not an audio extension
    return root


SETTINGS = {"sr": 8000, "duration": 0.5, "n_mels": 32, "n_fft": 512, "hop_length": 128}


def test_log_mel_of_every_clip_equals_librosa_on_that_clip_and_classes_are_sorted(clips):
    ds = audio.audio_folder(clips, **SETTINGS)
    frames = 1 + 4000 // 128
    assert ds.x.shape == (7, 32, frames, 1) and ds.x.dtype == np.float32
    assert ds.meta["classes"] == ["high", "low"] and ds.meta["clips_per_class"] == [3, 4]
    np.testing.assert_array_equal(ds.y, [0, 0, 0, 1, 1, 1, 1])
    wave1, _ = librosa.load(clips / "low" / "l1.wav", sr=8000, mono=True, duration=0.5)
    mel = librosa.feature.melspectrogram(y=wave1, sr=8000, n_fft=512, hop_length=128, n_mels=32)
    np.testing.assert_allclose(ds.x[4, :, :, 0], librosa.power_to_db(mel, ref=1.0, top_db=None), atol=1e-3)
    # the tone's mel band: 3000 Hz lies above 300 Hz in every clip of its class
    band = ds.x[..., 0].mean(axis=2).argmax(axis=1)
    assert (band[:3] > band[3:].max()).all()
    # the 0.25 s clip is silent (amin 1e-10 -> -100 dB) in its last full frames
    short = ds.x[6, :, -5:, 0]  # low/ sorted: l0, l1, l2, short
    np.testing.assert_allclose(short, -100.0, atol=1e-3)
    flat = audio.audio_folder(clips, **SETTINGS, flat=True)
    np.testing.assert_array_equal(flat.x, ds.x.reshape(7, -1))


def test_second_call_reads_the_cache_and_an_edited_clip_is_recomputed(clips, monkeypatch):
    first = audio.audio_folder(clips, **SETTINGS)
    assert first.meta["cache"].startswith(str(clips.parent / "cache" / "ibjax" / "audio"))

    def no_decoding(*a, **k):
        raise AssertionError("decoded a clip although the cache holds it")

    monkeypatch.setattr(librosa, "load", no_decoding)
    again = audio.audio_folder(clips, **SETTINGS)
    np.testing.assert_array_equal(again.x, first.x)
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(clips.parent / "cache"))
    _write(clips / "high" / "h0.wav", 1500)  # same name, new content
    edited = audio.audio_folder(clips, **SETTINGS)
    assert edited.meta["cache"] != first.meta["cache"]
    assert not np.array_equal(edited.x[0], first.x[0]) and np.array_equal(edited.x[1:], first.x[1:])
    other = audio.audio_folder(clips, **{**SETTINGS, "n_mels": 16})  # settings are part of the key too
    assert other.x.shape[1] == 16 and other.meta["cache"] != edited.meta["cache"]


def test_bad_folders_and_settings_are_refused_by_name(clips, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        audio.audio_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="at least 2 class subfolders"):
        audio.audio_folder(clips / "low")
    (clips / "empty").mkdir()
    with pytest.raises(ValueError, match="class folder 'empty' holds no audio file"):
        audio.audio_folder(clips, **SETTINGS)
    (clips / "empty" / "broken.wav").write_bytes(b"RIFF not really")
    with pytest.raises(ValueError, match="broken.wav: cannot read audio"):
        audio.audio_folder(clips, **SETTINGS, cache=False)
    (clips / "empty" / "broken.wav").unlink()
    (clips / "empty").rmdir()
    for bad, match in (
        ({"sr": 0}, "sr must be an integer >= 1"),
        ({"duration": float("nan")}, "duration must be a finite number of seconds > 0"),
        ({"offset": -1.0}, "offset must be a finite number of seconds >= 0"),
        ({"n_fft": 8192}, "n_fft .* must not exceed"),
    ):
        with pytest.raises(ValueError, match=match):
            audio.audio_folder(clips, **{**SETTINGS, **bad})


def test_a_run_config_names_an_audio_folder(clips):
    from ibjax import runs
    from ibjax.config import CNNConfig, DataConfig, MLPConfig, RunConfig

    img = runs.load_data(RunConfig(CNNConfig((32, 32, 1), (2,), 2, "tanh"), DataConfig(name=f"audio:{clips}")))
    assert img.name == "audio" and img.x.shape[0] == 7 and img.x.ndim == 4 and img.meta["classes"] == ["high", "low"]
    flat = runs.load_data(RunConfig(MLPConfig(), DataConfig(name=f"audio:{clips}")))
    assert flat.x.ndim == 2 and flat.x.shape[1] == img.x[0].size
