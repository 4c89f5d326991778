"""Test-only transcriptions of the reference computations avgen's DeSync is tested against, kept as close to
their sources as runs without torchaudio / einops:
- `desync_scores`: av-benchmark av_bench/evaluate.py, its DeSync block (+ synchformer.make_class_grid), with
  `compare_v_a` replaced by given logits;
- `melspectrogram`: torchaudio.transforms.MelSpectrogram(sample_rate=16000, win_length=400, hop_length=160,
  n_fft=1024, n_mels=128) with its defaults (periodic Hann, centre=True, reflect padding, power 2, onesided,
  HTK mel, no filter norm): torchaudio.functional.spectrogram and melscale_fbanks, written in numpy;
- `encode_audio`: av_bench/extract.py encode_audio_with_sync before the model (segments, log, pad, normalise);
- `divided_attention`: av_bench/synchformer/vit_helper.py DividedAttention.forward (qkv_attn with einsum)."""

from __future__ import annotations

import numpy as np
import torch


def make_class_grid(leftmost_val, rightmost_val, grid_size):
    return torch.from_numpy(np.linspace(leftmost_val, rightmost_val, grid_size)).float()


def desync_scores(first_logits: torch.Tensor, last_logits: torch.Tensor, batch_size: int = 16) -> float:
    total_samples = first_logits.shape[0]
    total_sync_scores = []
    sync_grid = make_class_grid(-2, 2, 21)
    for i in range(0, total_samples, batch_size):
        logits = first_logits[i : i + batch_size]
        top_id = torch.argmax(logits, dim=-1).cpu().numpy()
        for j in range(logits.shape[0]):
            total_sync_scores.append(abs(sync_grid[top_id[j]].item()))
        logits = last_logits[i : i + batch_size]
        top_id = torch.argmax(logits, dim=-1).cpu().numpy()
        for j in range(logits.shape[0]):
            total_sync_scores.append(abs(sync_grid[top_id[j]].item()))
    return float(np.mean(total_sync_scores))


def _hz_to_mel(freq):
    return 2595.0 * np.log10(1.0 + (freq / 700.0))


def _mel_to_hz(mels):
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate):
    all_freqs = np.linspace(0, sample_rate // 2, n_freqs)
    m_min = _hz_to_mel(f_min)
    m_max = _hz_to_mel(f_max)
    m_pts = np.linspace(m_min, m_max, n_mels + 2)
    f_pts = _mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_filter + 1)
    slopes = f_pts[None, :] - all_freqs[:, None]  # (n_freqs, n_filter + 2)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]  # (n_freqs, n_filter)
    up_slopes = slopes[:, 2:] / f_diff[1:]  # (n_freqs, n_filter)
    return np.maximum(0.0, np.minimum(down_slopes, up_slopes))


def spectrogram(waveform, n_fft, hop_length, win_length):
    """torch.stft(center=True, pad_mode="reflect") of a periodic Hann window zero-padded to n_fft, |.|^2."""
    n = np.arange(win_length)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / win_length)  # periodic Hann
    left = (n_fft - win_length) // 2
    window = np.pad(window, (left, n_fft - win_length - left))
    padded = np.pad(waveform, n_fft // 2, mode="reflect")
    frames = 1 + (len(padded) - n_fft) // hop_length
    spec = np.stack([np.fft.rfft(padded[i * hop_length : i * hop_length + n_fft] * window) for i in range(frames)])
    return (np.abs(spec) ** 2).T  # (n_fft // 2 + 1, frames)


def melspectrogram(waveform):
    spec = spectrogram(waveform, n_fft=1024, hop_length=160, win_length=400)
    fb = melscale_fbanks(1024 // 2 + 1, 0.0, 16000 / 2, 128, 16000)
    return (spec.T @ fb).T  # (n_mels, time)


def pad_or_truncate(audio, max_spec_t):
    difference = max_spec_t - audio.shape[-1]
    if difference > 0:
        audio = np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(0, difference)])
    elif difference < 0:
        audio = audio[..., :max_spec_t]
    return audio


def encode_audio(x):
    """(t,) 16 kHz -> (S, 128, 66) as encode_audio_with_sync feeds the model."""
    (t,) = x.shape
    segment_size = 10240
    step_size = 10240 // 2
    num_segments = (t - segment_size) // step_size + 1
    segments = [x[i * step_size : i * step_size + segment_size] for i in range(num_segments)]
    x = np.stack([melspectrogram(s) for s in segments])
    x = np.log(x + 1e-6)
    x = pad_or_truncate(x, 66)
    mean = -4.2677393
    std = 4.5689974
    return (x - mean) / (2 * std)


def qkv_attn(q, k, v):
    sim = torch.einsum("b i d, b j d -> b i j", q, k)
    attn = sim.softmax(dim=-1)
    return torch.einsum("b i j, b j d -> b i d", attn, v)


def divided_attention(qkv, proj, num_heads, x, over_time, f, n):
    """DividedAttention.forward: space 'b (f n) d -> (b f) n d', time 'b (f n) d -> (b n) f d'."""
    h = num_heads
    b, tokens, dim = x.shape
    q, k, v = qkv(x).chunk(3, dim=-1)
    e = dim // h
    q, k, v = (
        t.reshape(b, tokens, h, e).permute(0, 2, 1, 3).reshape(b * h, tokens, e) for t in (q, k, v)
    )  # 'b n (h d) -> (b h) n d'
    q = q * (dim // h) ** -0.5
    (cls_q, q_), (cls_k, k_), (cls_v, v_) = ((t[:, 0:1], t[:, 1:]) for t in (q, k, v))
    cls_out = qkv_attn(cls_q, k, v)

    def to_groups(t):
        t = t.reshape(t.shape[0], f, n, t.shape[-1])
        t = t.transpose(1, 2) if over_time else t  # (bh, n, f, d) | (bh, f, n, d)
        return t.reshape(-1, t.shape[2], t.shape[3])

    def from_groups(t):
        bh = cls_q.shape[0]
        t = t.reshape(bh, n, f, -1).transpose(1, 2) if over_time else t.reshape(bh, f, n, -1)
        return t.reshape(bh, f * n, -1)

    q_, k_, v_ = to_groups(q_), to_groups(k_), to_groups(v_)
    r = q_.shape[0] // cls_k.shape[0]
    cls_k, cls_v = (t.repeat_interleave(r, dim=0) for t in (cls_k, cls_v))  # 'b () d -> (b r) () d'
    k_ = torch.cat((cls_k, k_), dim=1)
    v_ = torch.cat((cls_v, v_), dim=1)
    out = from_groups(qkv_attn(q_, k_, v_))
    out = torch.cat((cls_out, out), dim=1)
    out = out.reshape(b, h, tokens, dim // h).permute(0, 2, 1, 3).reshape(b, tokens, dim)  # '(b h) n d -> b n (h d)'
    return proj(out)
