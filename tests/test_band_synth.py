"""Band synthesis for coarse mels (decoding/band_synth.py): the bounces become audible onsets."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from test_metrics_synthetic import _test_pairs

from avgen.decoding.band_synth import BandSynth
from avgen.decoding.decode import AudioDecoder, mel_vocoder
from avgen.decoding.griffin_lim import BatchedGriffinLim
from avgen.metrics.av_align import onset_times


def onset_f1(reference: np.ndarray, estimate: np.ndarray, tolerance: float) -> float:
    if len(reference) == 0 or len(estimate) == 0:
        return float(len(reference) == len(estimate))
    d = np.abs(reference[:, None] - estimate[None])
    cost = np.where(d <= tolerance, d, 1e6)
    rows, cols = linear_sum_assignment(cost)
    matched = int((cost[rows, cols] <= tolerance).sum())
    return 2 * matched / (len(reference) + len(estimate))


def test_decoded_onsets_follow_the_mel_better_than_griffin_lim(synthetic_store):
    """The listening metric: onsets detected in the decoded audio (as AV-Align detects them) against the
    onsets the probe reads off the mel itself, within +-2 mel hops."""
    store, probe, _, mels = _test_pairs(synthetic_store)
    meta = store.representations["audio_mel"].meta
    tolerance = 2 * meta["hop_length"] / meta["sample_rate"]
    scores = {}
    for name, vocoder in (
        ("band_synth", BandSynth.from_metadata(meta)),
        ("griffin_lim", BatchedGriffinLim.from_metadata(meta, device="cpu")),
    ):
        wavs = vocoder.batch(np.stack(mels))
        scores[name] = np.mean(
            [
                onset_f1(probe.audio_onsets(m), onset_times(w, meta["sample_rate"]), tolerance)
                for m, w in zip(mels, wavs)
            ]
        )
    assert scores["band_synth"] > scores["griffin_lim"] + 0.1, scores


def test_auto_picks_band_synthesis_for_coarse_mels_only(synthetic_store):
    store, _, _, mels = _test_pairs(synthetic_store)
    meta = store.representations["audio_mel"].meta
    assert isinstance(mel_vocoder(meta), BandSynth) and meta["n_mels"] == 16
    assert isinstance(mel_vocoder({**meta, "n_mels": 80}, device="cpu"), BatchedGriffinLim)
    decoder = AudioDecoder(meta, device="cpu")
    wav = decoder(mels[0])
    assert wav.shape == (mels[0].shape[1] * meta["hop_length"],) and 0 < np.abs(wav).max() <= 0.9 + 1e-6
    np.testing.assert_allclose(decoder.batch(np.stack(mels[:3]))[0], wav, atol=1e-6)  # batch-independent
