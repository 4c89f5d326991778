"""Batched Griffin-Lim (decoding/griffin_lim.py) against librosa's per-clip mel_to_audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avgen.data.representations import AudioLogMel
from avgen.decoding.decode import AudioDecoder
from avgen.decoding.export import GriffinLim
from avgen.decoding.griffin_lim import BatchedGriffinLim

MEL = dict(sample_rate=16000, n_mels=64, n_fft=512, hop_length=128, fmin=0.0, fmax=None, min_db=-60.0, max_db=20.0)


def tone_bursts(rng: np.random.Generator, n: int, seconds: float = 1.0) -> list[np.ndarray]:
    t = np.arange(int(16000 * seconds)) / 16000
    out = []
    for i in range(n):
        env = sum((t >= b) * np.exp(-(t - b) * 8) for b in rng.uniform(0, seconds - 0.1, 3))
        out.append((np.sin(2 * np.pi * [300, 646, 1392, 3000][i % 4] * t) * env * 0.5).astype(np.float32))
    return out


def mel_error(mel: AudioLogMel, wav: np.ndarray, target: np.ndarray) -> float:
    """Mean |log-mel of the audio - the mel it was made from| in the normalised [-1, 1] units."""
    return float(np.abs(mel.normalise(mel.mel_power(wav))[:, : target.shape[1]] - target).mean())


def test_linear_magnitude_solves_the_nnls():
    """The magnitude's mel projection reproduces a mel that has an exact non-negative solution."""
    mel = AudioLogMel(**MEL)
    gl = BatchedGriffinLim(mel, device="cpu")
    s = torch.rand(2, mel.n_fft // 2 + 1, 10) ** 4
    power_mel = gl.basis @ s
    rebuilt = gl.basis @ gl.linear_magnitude(power_mel) ** 2
    assert torch.all(gl.linear_magnitude(power_mel) >= 0)
    assert float((rebuilt - power_mel).norm() / power_mel.norm()) < 0.05


def test_batched_griffin_lim_matches_librosa_within_tolerance():
    """Same lengths; the log-mel error of the audio each makes differs by < 0.02 (normalised units), and
    the batched one is never worse than librosa's by more than that."""
    mel = AudioLogMel(**MEL)
    mels = np.stack(
        [mel.normalise(mel.mel_power(w))[:, :120].astype(np.float32) for w in tone_bursts(np.random.default_rng(0), 4)]
    )
    ours = BatchedGriffinLim(mel, n_iter=32, device="cpu").batch(mels)
    reference = [GriffinLim(mel, n_iter=32)(m) for m in mels]
    assert ours.shape == (4, len(reference[0]))
    err_ours = np.mean([mel_error(mel, w, m) for w, m in zip(ours, mels)])
    err_ref = np.mean([mel_error(mel, w, m) for w, m in zip(reference, mels)])
    assert err_ours < err_ref + 0.02, (err_ours, err_ref)
    assert err_ours < 0.15  # the tones come back (a random waveform scores ~0.5 here)
    assert np.abs(ours).max() <= 0.9 + 1e-6


def test_one_clip_equals_its_row_of_a_batch():
    mel = AudioLogMel(**MEL)
    mels = np.stack(
        [mel.normalise(mel.mel_power(w))[:, :40].astype(np.float32) for w in tone_bursts(np.random.default_rng(1), 3)]
    )
    gl = BatchedGriffinLim(mel, n_iter=4, device="cpu")
    np.testing.assert_allclose(gl(mels[1]), gl.batch(mels)[1], atol=1e-4)


def test_audio_decoder_batches_and_keeps_order():
    meta = {"class": "AudioLogMel", **MEL}
    decoder = AudioDecoder(meta, device="cpu")
    assert isinstance(decoder.vocoder, BatchedGriffinLim)
    mels = np.random.default_rng(2).uniform(-1, 0, (5, 64, 30)).astype(np.float32)
    batched = decoder.batch(mels, batch_size=2)
    assert len(batched) == 5
    np.testing.assert_allclose(batched[3], decoder(mels[3]), atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (run by make gpu-check)")
def test_cuda_equals_cpu():
    mel = AudioLogMel(**MEL)
    mels = np.random.default_rng(3).uniform(-1, 0, (2, 64, 30)).astype(np.float32)
    cpu = BatchedGriffinLim(mel, n_iter=8, device="cpu").batch(mels)
    gpu = BatchedGriffinLim(mel, n_iter=8, device="cuda").batch(mels)
    np.testing.assert_allclose(cpu, gpu, atol=1e-3)
