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


# ---- the forward pass: Synchformer.extract_vfeats / extract_afeats / compare_v_a with the reference's sequence
# of operations (motionformer.py, video_model_builder.forward_features, vit_helper.DividedSpaceTimeBlock,
# ast.py, hf_src/modeling_ast.py, transformer.py), reading the weights of a given avgen model


def base_encoder_layer(layer, x):
    """motionformer.BaseEncoderLayer.forward without mask or position embedding: CLS, torch's layer, CLS out."""
    cls_tokens = layer.cls_token.expand(x.shape[0], -1, -1)
    x = torch.cat((cls_tokens, x), dim=-2)
    x = torch.nn.TransformerEncoderLayer.forward(layer, src=x, src_mask=None)
    return x[:, 0, :]


def extract_vfeats(model, vis, num_heads):
    m = model.vfeat_extractor
    B, S, Tv, C, H, W = vis.shape
    vis = vis.permute(0, 1, 3, 2, 4, 5)  # (B, S, C, Tv, H, W)
    x = vis.reshape(B * S, C, Tv, H, W)
    # forward_features
    x = m.patch_embed_3d.proj(x).flatten(2).transpose(1, 2)
    x = torch.cat((m.cls_token.expand(B * S, -1, -1), x), dim=1)
    npatch, temporal_resolution = 196, 8
    cls_embed = m.pos_embed[:, 0, :].unsqueeze(1)
    tile_pos_embed = m.pos_embed[:, 1:, :].repeat(1, temporal_resolution, 1)
    tile_temporal_embed = m.temp_embed.repeat_interleave(npatch, 1)
    total_pos_embed = torch.cat([cls_embed, tile_pos_embed + tile_temporal_embed], dim=1)
    x = x + total_pos_embed
    for blk in m.blocks:
        a = blk.timeattn
        time_output = divided_attention(a.qkv, a.proj, num_heads, blk.norm3(x), True, temporal_resolution, npatch)
        time_residual = x + time_output
        a = blk.attn
        space_output = divided_attention(
            a.qkv, a.proj, num_heads, blk.norm1(time_residual), False, temporal_resolution, npatch
        )
        x = time_residual + space_output
        x = x + blk.mlp.fc2(torch.nn.functional.gelu(blk.mlp.fc1(blk.norm2(x))))
    # forward_segments
    x = x[:, 1:, :]
    x = m.norm(x)
    D = x.shape[-1]
    x = x.permute(0, 2, 1).reshape(B * S, D, 8, 14, 14)  # restore_spatio_temp_dims
    x = x.permute(0, 2, 3, 4, 1).reshape(B * S * 8, 14 * 14, D)  # 'BS D t h w -> (BS t) (h w) D'
    x = base_encoder_layer(m.spatial_attn_agg, x)
    x = x.reshape(B * S, 8, D)  # '(BS t) D -> BS t D'
    return x.reshape(B, S, 8, D)


def _transpose_for_scores(t, num_heads):
    return t.view(t.size()[:-1] + (num_heads, t.shape[-1] // num_heads)).permute(0, 2, 1, 3)


def extract_afeats(model, aud, num_heads):
    a = model.afeat_extractor
    B, S, _, Fa, Ta = aud.shape
    aud = aud.view(B, S, Fa, Ta).permute(0, 1, 3, 2)  # (B, S, Ta, F)
    x = aud.reshape(B * S, Ta, Fa)
    e = a.ast.embeddings
    input_values = x.unsqueeze(1).transpose(2, 3)
    emb = e.patch_embeddings.projection(input_values).flatten(2).transpose(1, 2)
    n = emb.shape[0]
    emb = torch.cat((e.cls_token.expand(n, -1, -1), e.distillation_token.expand(n, -1, -1), emb), dim=1)
    hidden = emb + e.position_embeddings
    for layer in a.ast.encoder.layer:
        s = layer.attention.attention
        h = layer.layernorm_before(hidden)
        D = h.shape[-1]
        head = D // num_heads

        q, k, v = (_transpose_for_scores(f(h), num_heads) for f in (s.query, s.key, s.value))
        scores = torch.matmul(q, k.transpose(-1, -2)) / (head**0.5)
        context = torch.matmul(scores.softmax(dim=-1), v).permute(0, 2, 1, 3).contiguous()
        context = context.view(context.size()[:-2] + (D,))
        hidden = layer.attention.output.dense(context) + hidden
        out = layer.layernorm_after(hidden)
        out = torch.nn.functional.gelu(layer.intermediate.dense(out))
        hidden = layer.output.dense(out) + hidden
    seq = a.ast.layernorm(hidden)
    D = seq.shape[-1]
    feats = seq[:, 2:, :].permute(0, 2, 1).reshape(B * S, D, 12, 6)  # restore_freq_temp_dims
    x = feats.permute(0, 3, 2, 1).reshape(B * S * 6, 12, D)  # FrequencyTransformerEncoderLayer
    x = base_encoder_layer(a.freq_attn_agg, x).view(B * S, 6, D)
    return x.view(B, S, 6, D)


def compare_v_a(model, vis, aud, n_head):
    vis, aud = model.vproj(vis), model.aproj(aud)
    B, S, tv, D = vis.shape
    B, S, ta, D = aud.shape
    v, a = vis.view(B, S * tv, D), aud.view(B, S * ta, D)
    t = model.transformer
    off_tok, mod_tok = t.OFF_tok.repeat(B, 1, 1), t.MOD_tok.repeat(B, 1, 1)
    v, a = t.vis_in_lnorm(v), t.aud_in_lnorm(a)
    x = torch.cat((off_tok, v, mod_tok, a), dim=1)
    x = x + t.pos_emb_cfg.pos_emb
    for blk in t.blocks:
        h = blk.ln1(x)
        B, T, C = h.size()
        k = blk.attn.key(h).view(B, T, n_head, C // n_head).transpose(1, 2)
        q = blk.attn.query(h).view(B, T, n_head, C // n_head).transpose(1, 2)
        vv = blk.attn.value(h).view(B, T, n_head, C // n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / (k.size(-1) ** 0.5))
        y = (att.softmax(dim=-1) @ vv).transpose(1, 2).contiguous().view(B, T, C)
        x = x + blk.attn.proj(y)
        x = x + blk.mlp[2](torch.nn.functional.gelu(blk.mlp[0](blk.ln2(x))))
    x = t.ln_f(x)
    return t.off_head(x[:, 0, :])
