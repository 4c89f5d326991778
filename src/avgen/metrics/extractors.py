"""Feature networks of the weighted metrics, from local files or weights registry names (docs/metrics.md,
docs/weights.md: `i3d-torchscript`, `i3d-videogpt`, `clap-htsat-unfused`, fetched and verified on first use).

- video (FVD/KVD): I3D Kinetics-400 as a state dict for `avgen.models.i3d.InceptionI3d` (the layout of the
  common PyTorch port) or as a TorchScript archive (the `i3d_torchscript.pt` used by StyleGAN-V and most
  FVD code, called with `rescale=False, resize=False, return_features=True`); clips are cut to 16 frames,
  resized (shorter side) to 224 and centre-cropped, scaled to [-1, 1].
- audio (FAD): a local CLAP directory (transformers `ClapModel` + its feature extractor) or a TorchScript
  module `wave (B, S) -> (B, d) | (B, n, d)` at a stated sample rate (e.g. an exported VGGish).
- PANNs Cnn14 (FD-PANNs, KL-PANNs, IS-PANNs) and VGGish (FD-VGGish), as av-benchmark runs them: the published
  checkpoints (`panns-cnn14-16k`, `vggish`) as state dicts for `avgen.models.panns.Cnn14` / `avgen.models.vggish`;
  each clip's mean removed, resampled to the model's rate, the whole clip (PANNs) or its 0.96 s examples (VGGish).
- PaSST (FD-PaSST, KL-PaSST, IS-PaSST), as av-benchmark runs it: the published checkpoint (`passt-s-ap476-swa`)
  as a state dict for `avgen.models.passt.PaSST`; each clip's mean removed, resampled to 32 kHz, its first 10 s
  (or the clip followed by zeros to 10 s), one output per clip.
- AudioCLIP's audio encoder (FAD on AudioCLIP, as MM-Diffusion and JavisBench compute it): the `audio.` entries of
  the published `AudioCLIP-Full-Training.pt` (`audioclip-full-training`) for `avgen.models.audioclip.ESResNeXtFBSP`;
  waves in [-1, 1] fed as the references feed them (no int16 rescaling, no mean removal), resampled to the
  configured rate (44.1 kHz: MM-Diffusion's and AudioCLIP's own), optionally cut or zero-padded to a length,
  one 1024-d embedding per clip.
- ImageBind (IB-AV/TV/TA): the official code has no pip release, so its modality encoders are used as
  TorchScript exports: `video (B, T, 3, H, W) in [0, 1] -> (B, d)`, `audio (B, S) -> (B, d)`,
  `text list[str] -> (B, d)` (docs/metrics.md shows the export).
"""

from __future__ import annotations

import importlib
import zipfile
from pathlib import Path

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avgen.models.audioclip import ESResNeXtFBSP, audio_state
from avgen.models.i3d import InceptionI3d
from avgen.models.panns import Cnn14, checkpoint_state, rate_of_state
from avgen.models.passt import PaSST, fit_clip
from avgen.models.passt import checkpoint_state as passt_checkpoint_state
from avgen.models.vggish import EXAMPLE_FRAMES, HOP, WINDOW, VGGish
from avgen.models.vggish import SAMPLE_RATE as VGGISH_RATE
from avgen.weights import resolve


def require_file(path: str | Path | None, key: str) -> Path:
    """The local weights `path` names: a local path, or a registry name fetched and verified (avgen.weights)."""
    if not path:
        raise ValueError(f"{key}: nothing configured (set it to a weights name, see `avgen weights`, or a local file)")
    p = resolve(path)
    if not p.exists():
        raise FileNotFoundError(f"{key}: {p} does not exist (a local weights file or a registry name: avgen weights)")
    return p


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files holding a `code/` folder; plain state dicts do not."""
    if path.is_dir() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n for n in z.namelist())


def video_clips_for_i3d(video: torch.Tensor, num_frames: int = 16, size: int = 224) -> torch.Tensor:
    """(B, T, 3, H, W) in [0, 1] -> (B, 3, num_frames, size, size) in [-1, 1]: first frames, shorter side
    resized to `size`, centre crop."""
    b, t, c, h, w = video.shape
    if t < num_frames:
        raise ValueError(f"FVD/KVD use {num_frames}-frame clips; got {t} frames (set metrics.fvd.num_frames)")
    x = video[:, :num_frames].flatten(0, 1).float()  # (B, F, 3, H, W) -> (B*F, 3, H, W)
    scale = size / min(h, w)
    x = F.interpolate(
        x,
        size=(max(size, round(h * scale)), max(size, round(w * scale))),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )
    top, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
    x = x[:, :, top : top + size, left : left + size] * 2 - 1
    return x.reshape(b, num_frames, c, size, size).transpose(1, 2)  # (B*F, 3, S, S) -> (B, 3, F, S, S)


class VideoFeatures(nn.Module):
    """I3D features of (B, T, 3, H, W) clips in [0, 1]."""

    def __init__(self, network: nn.Module, num_frames: int = 16, size: int = 224, torchscript: bool = False):
        super().__init__()
        self.network, self.num_frames, self.size, self.torchscript = network.eval(), num_frames, size, torchscript

    @torch.no_grad()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = video_clips_for_i3d(video, self.num_frames, self.size).to(next(self.network.parameters()).device)
        if self.torchscript:
            return self.network(x, rescale=False, resize=False, return_features=True)
        return self.network(x)


def load_video_features(
    path: str | Path,
    num_frames: int = 16,
    size: int = 224,
    width: float = 1.0,
    num_classes: int = 400,
    key: str = "metrics.fvd.weights",
) -> VideoFeatures:
    p = require_file(path, key)
    if is_torchscript(p):
        return VideoFeatures(torch.jit.load(str(p), map_location="cpu"), num_frames, size, torchscript=True)
    net = InceptionI3d(num_classes=num_classes, width=width)
    state = torch.load(p, map_location="cpu", weights_only=True)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{key}: {p} is not an I3D state dict of this layout (width={width}, classes={num_classes}): "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    return VideoFeatures(net, num_frames, size)


def resample(wave: torch.Tensor, sample_rate: int, target_rate: int) -> np.ndarray:
    x = wave.detach().float().cpu().numpy()
    return x if sample_rate == target_rate else librosa.resample(x, orig_sr=sample_rate, target_sr=target_rate, axis=-1)


def windows(wave: np.ndarray, sample_rate: int, window_seconds: float | None) -> np.ndarray:
    """(B, S) -> (B, n, window) non-overlapping windows (the last partial one dropped); None = the whole clip."""
    if window_seconds is None:
        return wave[:, None]
    n = int(round(window_seconds * sample_rate))
    count = wave.shape[1] // n
    if count == 0:
        raise ValueError(f"audio of {wave.shape[1] / sample_rate:.2f} s is shorter than one {window_seconds} s window")
    return wave[:, : count * n].reshape(wave.shape[0], count, n)  # (B, S) -> (B, n, window)


class ClapAudioEmbedding(nn.Module):
    """CLAP audio embeddings from a local transformers directory; (B, S) at `sample_rate` -> (B, n, d)."""

    def __init__(self, model_dir: str | Path, sample_rate: int, window_seconds: float | None = None):
        super().__init__()
        from transformers import ClapFeatureExtractor, ClapModel

        self.model = ClapModel.from_pretrained(model_dir).eval()
        self.processor = ClapFeatureExtractor.from_pretrained(model_dir)
        self.sample_rate, self.window_seconds = sample_rate, window_seconds

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        rate = self.processor.sampling_rate
        w = windows(resample(wave, self.sample_rate, rate), rate, self.window_seconds)  # (B, n, L)
        inputs = self.processor(list(w.reshape(-1, w.shape[-1])), sampling_rate=rate, return_tensors="pt")
        emb = self.model.get_audio_features(**inputs)
        emb = emb.pooler_output if hasattr(emb, "pooler_output") else emb
        return emb.reshape(w.shape[0], w.shape[1], -1)  # (B*n, d) -> (B, n, d)


class ScriptedAudioEmbedding(nn.Module):
    """A TorchScript `wave (B, S) -> (B, d) | (B, n, d)` at the module's own `model_rate`."""

    def __init__(self, path: Path, sample_rate: int, model_rate: int):
        super().__init__()
        self.module = torch.jit.load(str(path), map_location="cpu")
        self.sample_rate, self.model_rate = sample_rate, model_rate

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.module(torch.from_numpy(resample(wave, self.sample_rate, self.model_rate)))


def load_audio_embedding(
    path: str | Path,
    sample_rate: int,
    model_rate: int | None = None,
    window_seconds: float | None = None,
    key: str = "metrics.fad.weights",
) -> nn.Module:
    """A CLAP directory (has config.json) or a TorchScript file (needs `model_rate`)."""
    p = require_file(path, key)
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ValueError(f"{key}: {p} is a directory without config.json (expected a transformers CLAP model)")
        return ClapAudioEmbedding(p, sample_rate, window_seconds)
    if not is_torchscript(p):
        raise ValueError(f"{key}: {p} is neither a CLAP directory nor a TorchScript archive")
    if model_rate is None:
        raise ValueError(f"{key}: a TorchScript audio embedding needs its input sample rate (metrics.fad.model_rate)")
    return ScriptedAudioEmbedding(p, sample_rate, model_rate)


def load_imagebind(paths: dict[str, str | None], key: str = "metrics.imagebind") -> dict[str, torch.jit.ScriptModule]:
    """TorchScript encoders per modality (`video`, `audio`, `text`); the configured ones only."""
    encoders = {}
    for m, p in paths.items():
        if not p:
            continue
        f = require_file(p, f"{key}.{m}")
        if not is_torchscript(f):  # e.g. imagebind-huge itself: the checkpoint the encoders are exported from
            raise ValueError(
                f"{key}.{m}: {f} is not a TorchScript encoder; export one from the ImageBind "
                "checkpoint first (docs/metrics.md#weights)"
            )
        encoders[m] = torch.jit.load(str(f), map_location="cpu").eval()
    return encoders


VGGISH_MIN_SECONDS = (WINDOW + (EXAMPLE_FRAMES - 1) * HOP) / VGGISH_RATE  # 0.975 s: one complete example


def centred_waves(wave: torch.Tensor, sample_rate: int, model_rate: int) -> np.ndarray:
    """(B, S) at `sample_rate` -> (B, S') at `model_rate`, each clip's mean removed first (av-benchmark's
    AudioDataset: `waveform - waveform.mean()`, then resampled)."""
    x = wave.detach().float().cpu()
    return resample(x - x.mean(-1, keepdim=True), sample_rate, model_rate)


def _numpy_global(name: str):
    """The numpy object a pickled array's global names (numpy 1's `numpy.core` as numpy 2's `numpy._core`)."""
    module, _, attr = name.replace("numpy.core.", "numpy._core.").rpartition(".")
    allowed = {"numpy._core.multiarray": {"_reconstruct", "scalar"}, "numpy": {"ndarray", "dtype"}}
    if attr in allowed.get(module, ()) or (module == "numpy.dtypes" and attr.endswith("DType")):
        return getattr(importlib.import_module(module), attr)
    return None


def load_state(path: Path, key: str) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors, read with the tensors-only unpickler. The published PANNs checkpoints also
    pickle their training sampler's numpy state: numpy's array globals are allowed for that, nothing else."""
    names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    objects = {n: _numpy_global(n) for n in names}
    refused = sorted(n for n, obj in objects.items() if obj is None)
    if refused:
        raise ValueError(f"{key}: {path} pickles code objects a weights file should not ({', '.join(refused)})")
    allowed = [(obj, n) for n, obj in objects.items()]
    if "numpy.dtype" in objects:  # a dtype unpickles to its class (numpy.dtypes.UInt32DType...), never named
        allowed += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    with torch.serialization.safe_globals(allowed):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{key}: {path} holds a {type(checkpoint).__name__}, not a state dict")
    return checkpoint_state(checkpoint)


def load_strict(net: nn.Module, state: dict, path: Path, key: str, what: str) -> nn.Module:
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{key}: {path} is not {what}: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    return net.eval()


class PannsAudio(nn.Module):
    """PANNs Cnn14 outputs of whole clips: (B, S) at `sample_rate` -> {"embedding": (B, 2048), "logits": (B, 527),
    "probabilities": (B, 527)}, in batches of `batch_size`."""

    def __init__(self, net: Cnn14, sample_rate: int, batch_size: int = 16):
        super().__init__()
        self.net, self.sample_rate, self.batch_size = net.eval(), sample_rate, batch_size

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.from_numpy(centred_waves(wave, self.sample_rate, self.net.sample_rate))
        device = next(self.net.parameters()).device
        outs = [self.net(chunk.to(device)) for chunk in x.split(self.batch_size)]
        return {k: torch.cat([o[k] for o in outs]).float().cpu() for k in outs[0]}


class PasstAudio(nn.Module):
    """PaSST outputs of each clip's first 10 s at 32 kHz (zero-padded if shorter): (B, S) at `sample_rate` ->
    {"embedding": (B, 768), "logits": (B, 527), "probabilities": (B, 527)}, in batches of `batch_size`."""

    def __init__(self, net: PaSST, sample_rate: int, batch_size: int = 16):
        super().__init__()
        self.net, self.sample_rate, self.batch_size = net.eval(), sample_rate, batch_size

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        x = fit_clip(torch.from_numpy(centred_waves(wave, self.sample_rate, self.net.sample_rate)))
        device = next(self.net.parameters()).device
        outs = [self.net(chunk.to(device)) for chunk in x.split(self.batch_size)]
        return {k: torch.cat([o[k] for o in outs]).float().cpu() for k in outs[0]}


class VggishAudio(nn.Module):
    """VGGish embeddings of each clip's 0.96 s examples: (B, S) at `sample_rate` -> (B, n, 128)."""

    def __init__(self, net: VGGish, sample_rate: int):
        super().__init__()
        self.net, self.sample_rate = net.eval(), sample_rate

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.shape[-1] / self.sample_rate < VGGISH_MIN_SECONDS:
            raise ValueError(
                f"fd_vggish: clips of {wave.shape[-1] / self.sample_rate:.3f} s are shorter than one VGGish example "
                f"({VGGISH_MIN_SECONDS} s: 96 frames of 25 ms every 10 ms)"
            )
        return self.net.embed(centred_waves(wave, self.sample_rate, VGGISH_RATE)).cpu()


def load_panns(path: str | Path, sample_rate: int, key: str = "evaluate.panns.weights") -> PannsAudio:
    """Cnn14 from a published checkpoint (its `model` entry) or a bare state dict, at the rate its front end has."""
    p = require_file(path, key)
    state = load_state(p, key)
    if "logmel_extractor.melW" not in state:
        raise ValueError(f"{key}: {p} is not a PANNs Cnn14 state dict (no logmel_extractor.melW)")
    net = Cnn14(rate_of_state(state))
    return PannsAudio(load_strict(net, state, p, key, "a PANNs Cnn14 state dict"), sample_rate)


def load_passt(path: str | Path, sample_rate: int, key: str = "evaluate.passt.weights") -> PasstAudio:
    """PaSST from the published checkpoint (a bare state dict, or one under `model`), read as the reference's
    loader reads it; width, depth and classes from its shapes."""
    p = require_file(path, key)
    state = passt_checkpoint_state(load_state(p, key))
    if "time_new_pos_embed" not in state or "head_dist.weight" not in state:
        raise ValueError(f"{key}: {p} is not a PaSST state dict (no time_new_pos_embed / head_dist)")
    net = PaSST.from_state(state)
    wrong = {k: (tuple(v.shape), tuple(state[k].shape)) for k, v in net.state_dict().items() if k in state}
    wrong = {k: shapes for k, shapes in wrong.items() if shapes[0] != shapes[1]}
    if wrong:  # e.g. the 20 s / 30 s models' longer time grids, or another patch stride
        raise ValueError(
            f"{key}: {p} is not a PaSST of the published 10 s, 128-bin layout: (expected, found) shapes {wrong}"
        )
    return PasstAudio(load_strict(net, state, p, key, "a PaSST state dict of the published layout"), sample_rate)


def load_vggish(path: str | Path, sample_rate: int, key: str = "evaluate.vggish.weights") -> VggishAudio:
    """VGGish from torchvggish's state dict (`vggish-10086976.pth` layout)."""
    p = require_file(path, key)
    net = load_strict(VGGish(), load_state(p, key), p, key, "a torchvggish VGGish state dict")
    return VggishAudio(net, sample_rate)


class AudioClipAudio(nn.Module):
    """AudioCLIP audio embeddings of whole clips: (B, S) in [-1, 1] at `sample_rate` -> (B, 1024), the encoder's
    output before AudioCLIP's L2 normalisation (what MM-Diffusion's and JavisBench's FAD read).

    The waves are resampled to `model_rate` and, with `seconds`, cut to their first `seconds` or followed by
    zeros to that length (MM-Diffusion: 1.6 s at 44.1 kHz; JavisBench: at most 4 s at 16 kHz); they are not
    rescaled to the int16 range the network was trained on (neither reference does). `batch_norm`: "eval" uses
    the checkpoint's running statistics (JavisBench calls `.eval()`); "batch" normalises each batch of
    `batch_size` clips by its own statistics, as MM-Diffusion's evaluator, which never calls `.eval()`, does
    (its batches: 8 clips per process; the checkpoint's running statistics are left untouched here)."""

    def __init__(
        self,
        net: ESResNeXtFBSP,
        sample_rate: int,
        model_rate: int = 44100,
        seconds: float | None = None,
        batch_norm: str = "eval",
        batch_size: int = 8,
    ):
        super().__init__()
        if batch_norm not in ("eval", "batch"):
            raise ValueError(f"evaluate.audioclip.batch_norm: 'eval' or 'batch', not {batch_norm!r}")
        self.net, self.sample_rate, self.model_rate = net.eval(), sample_rate, model_rate
        self.seconds, self.batch_norm, self.batch_size = seconds, batch_norm, batch_size

    def waves(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, S) at `sample_rate` -> (B, S') at `model_rate`, fitted to `seconds` if set."""
        x = torch.from_numpy(resample(wave, self.sample_rate, self.model_rate))
        if self.seconds is None:
            return x
        n = int(self.seconds * self.model_rate)
        return x[:, :n] if x.shape[1] >= n else F.pad(x, (0, n - x.shape[1]))

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.waves(wave)
        device = next(self.net.parameters()).device
        norms = [m for m in self.net.modules() if isinstance(m, nn.BatchNorm2d)]
        batch = self.batch_norm == "batch"
        if batch and len(x) % self.batch_size == 1:
            raise ValueError(
                "evaluate.audioclip.batch_norm=batch: a batch of one clip has no batch statistics "
                f"({len(x)} clips in batches of {self.batch_size}); score another number of clips, or use eval"
            )
        for m in norms:  # batch statistics without updating the running ones
            m.train(batch)
            m.track_running_stats = not batch
        try:
            return torch.cat([self.net(chunk.to(device)).float().cpu() for chunk in x.split(self.batch_size)])
        finally:
            for m in norms:
                m.eval()
                m.track_running_stats = True


def load_audioclip(
    path: str | Path,
    sample_rate: int,
    model_rate: int = 44100,
    seconds: float | None = None,
    batch_norm: str = "eval",
    key: str = "evaluate.audioclip.weights",
) -> AudioClipAudio:
    """AudioCLIP's audio encoder from the full AudioCLIP checkpoint (its `audio.` entries only: the image and text
    towers are not loaded) or a bare ESResNeXt-fbsp state dict, strictly."""
    p = require_file(path, key)
    state = audio_state(load_state(p, key))
    if "fbsp.fb" not in state or "fc.weight" not in state:
        raise ValueError(f"{key}: {p} is not an AudioCLIP checkpoint (no audio.fbsp / audio.fc entries)")
    if any(k not in state for k in ("layer1.0.conv2.weight", *(f"layer{i}.0.conv1.weight" for i in range(1, 5)))):
        raise ValueError(f"{key}: {p} is not an AudioCLIP audio encoder state dict (no ResNeXt stages)")
    net = load_strict(
        ESResNeXtFBSP.from_state(state), state, p, key, "AudioCLIP's audio encoder (ESResNeXt-fbsp) state dict"
    )
    return AudioClipAudio(net, sample_rate, model_rate, seconds, batch_norm)
