"""A test-only transcription of av-benchmark's LAION-CLAP score (hkchengrex/av-benchmark): the audio side of
`av_bench/extract.py` (`AudioDataset(sr=48_000)` from `av_bench/data/audio_dataset.py`, then LAION-CLAP's
`get_audio_embedding_from_data`), the text side of `extract_text.py` (`get_text_embedding`) and the score of
`av_bench/evaluate.py`. LAION-CLAP's own steps are written out: `get_audio_features` (training/data.py: repeatpad
or a random crop to the window), HTSAT's torchlibrosa front end (`Spectrogram` + `LogmelFilterBank`:
STFT power, librosa's Slaney mel bank, 10 log10 with ref 1 and amin 1e-10, no top_db), the RoBERTa tokenizer
(`padding="max_length", truncation=True, max_length=77`) and the L2 normalisation of both embeddings.

Changes: the window (`get_audio_embedding_from_data` passes 480000, LAION's 10 s at 48 kHz) is the model's
`clip_samples`, so that a tiny model's shorter window works; the networks are a transformers ClapModel (the
same towers and projections as LAION-CLAP's HTSAT and RoBERTa branches), fed the log-mel computed here; the
resampler is librosa's (av-benchmark's is torchaudio's Resample, not installed here); files are not read
(waves come as arrays).
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
import torch.nn.functional as F


def read_from_file(waveform: np.ndarray, sample_rate: int, sr: int, audio_length: float) -> torch.Tensor:
    # av_bench/data/audio_dataset.py AudioDataset.read_from_file, after torchaudio.load and the mono mean
    waveform = torch.from_numpy(np.asarray(waveform, np.float32))
    waveform = waveform - waveform.mean()
    if sample_rate == sr:
        audio = waveform
    else:
        audio = torch.from_numpy(librosa.resample(waveform.numpy(), orig_sr=sample_rate, target_sr=sr))
    audio = audio[: int(sr * audio_length)].unsqueeze(0)
    return audio


def get_audio_features(audio_data: torch.Tensor, max_len: int) -> dict:
    # laion_clap/training/data.py get_audio_features, data_truncating="rand_trunc", data_filling="repeatpad"
    sample = {}
    if len(audio_data) > max_len:
        longer = torch.tensor([True])
        overflow = len(audio_data) - max_len
        idx = np.random.randint(0, overflow + 1)
        audio_data = audio_data[idx : idx + max_len]
    else:
        if len(audio_data) < max_len:
            n_repeat = int(max_len / len(audio_data))
            audio_data = audio_data.repeat(n_repeat)
            audio_data = F.pad(audio_data, (0, max_len - len(audio_data)), mode="constant", value=0)
        longer = torch.tensor([False])
    sample["longer"] = longer
    sample["waveform"] = audio_data
    return sample


def htsat_logmel(x: torch.Tensor, audio_cfg: dict) -> torch.Tensor:
    # HTSAT forward's spectrogram_extractor + logmel_extractor (torchlibrosa Spectrogram, LogmelFilterBank)
    window = torch.hann_window(audio_cfg["window_size"], dtype=torch.float64)
    stft = torch.stft(
        x.double(),
        n_fft=audio_cfg["window_size"],
        hop_length=audio_cfg["hop_size"],
        win_length=audio_cfg["window_size"],
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    power = stft.abs() ** 2  # (B, freq, T)
    melW = librosa.filters.mel(
        sr=audio_cfg["sample_rate"],
        n_fft=audio_cfg["window_size"],
        n_mels=audio_cfg["mel_bins"],
        fmin=audio_cfg["fmin"],
        fmax=audio_cfg["fmax"],
    ).T
    mel = torch.matmul(power.transpose(1, 2), torch.from_numpy(melW).double())  # (B, T, mel)
    amin, ref = 1e-10, 1.0
    log_spec = 10.0 * torch.log10(torch.clamp(mel, min=amin))
    log_spec -= 10.0 * np.log10(np.maximum(amin, ref))
    return log_spec[:, None].float()  # (B, 1, T, mel)


def get_audio_embedding_from_data(model, x: torch.Tensor, audio_cfg: dict) -> torch.Tensor:
    # laion_clap hook.py CLAP_Module.get_audio_embedding_from_data (unfused) + CLAP.get_audio_embedding
    input_dict_list = []
    for audio_waveform in x:
        temp_dict = get_audio_features(audio_waveform, audio_cfg["clip_samples"])
        input_dict_list.append(temp_dict)
    waveform = torch.stack([d["waveform"] for d in input_dict_list])
    longer = torch.cat([d["longer"] for d in input_dict_list])
    out = model.get_audio_features(input_features=htsat_logmel(waveform, audio_cfg), is_longer=longer[:, None])
    out = out.pooler_output if hasattr(out, "pooler_output") else out
    return F.normalize(out, dim=-1)


def get_text_embedding(model, tokenizer, text_data: list[str]) -> torch.Tensor:
    # laion_clap hook.py CLAP_Module.tokenizer + get_text_embedding
    text_data = tokenizer(text_data, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
    out = model.get_text_features(input_ids=text_data["input_ids"], attention_mask=text_data["attention_mask"])
    out = out.pooler_output if hasattr(out, "pooler_output") else out
    return F.normalize(out, dim=-1)


@torch.inference_mode()
def laion_clap_score(
    model, tokenizer, waves, captions, sample_rate: int, audio_length: float, audio_cfg: dict
) -> float:
    # extract.py (audio, one file per clip), extract_text.py (one caption at a time), evaluate.py (the score)
    audio = torch.cat(
        [
            get_audio_embedding_from_data(
                model, read_from_file(w, sample_rate, audio_cfg["sample_rate"], audio_length), audio_cfg
            )
            for w in waves
        ]
    )
    text = torch.stack([get_text_embedding(model, tokenizer, [caption]).squeeze() for caption in captions])
    clap_score = torch.cosine_similarity(text, audio, dim=-1).mean()
    return clap_score.item()
