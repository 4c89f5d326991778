"""Tiny, randomly initialised stand-ins of the pretrained networks avgen loads from local paths, built from
config and written with `save_pretrained`, so that every loader runs for real without downloads (tests, smoke
targets). Their outputs mean nothing; their layouts are the real ones.
"""

from __future__ import annotations

from pathlib import Path


def tiny_clap(path: str | Path, seed: int = 0) -> Path:
    """A transformers CLAP (HTSAT audio tower + RoBERTa text tower) and its feature extractor: 48 kHz input,
    1 s windows, 16-d joint embeddings."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(seed)
    text = dict(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                max_position_embeddings=80, projection_dim=16)
    audio = dict(window_size=8, num_mel_bins=32, spec_size=128, patch_size=4, patch_stride=(4, 4), depths=[1, 1],
                 num_attention_heads=[2, 2], hidden_size=32, patch_embeds_hidden_size=16, projection_dim=16,
                 enable_fusion=False)
    model = ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=16)).eval()
    extractor = ClapFeatureExtractor(feature_size=32, sampling_rate=48000, hop_length=480, max_length_s=1,
                                     fft_window_size=1024, truncation="rand_trunc")
    path = Path(path)
    model.save_pretrained(path)
    extractor.save_pretrained(path)
    return path
