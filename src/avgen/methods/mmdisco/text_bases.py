"""Pretrained text-to-audio / text-to-video diffusers models as frozen MMDisCo bases (paper §4.3;
docs/methods.md#mmdisco).

Each adapter loads a pipeline directory component by component (the pipeline's `__call__` is never used),
local or by weights name (`audioldm-m-full`; `realistic-vision-v5.1` + `animatediff-motion-adapter-v1-5-2`, the
official code's pair: docs/weights.md):

- `AudioLDMBase`: `unet/` (UNet2DConditionModel conditioned by CLAP text embeddings as class embeddings),
  `text_encoder/` (ClapTextModelWithProjection), `tokenizer/`, `scheduler/`; latents (B, C, T, M) as stored by
  the `AudioLDMLatents` representation.
- `AnimateDiffBase`: `unet/` (a UNetMotionModel, or an SD UNet2DConditionModel plus `motion_adapter/` or an
  explicit `motion_adapter` directory), `text_encoder/` (CLIPTextModel), `tokenizer/`, `scheduler/`;
  latents stored (F, C, h, w) per clip, (B, C, F, h, w) for the UNet.

Each keeps its own noise schedule (its scheduler's betas) and prediction type; one shared t drives both
(docs/methods.md#conventions). Prompt embeddings are computed once per distinct prompt and cached.
`bind(prompts, cfg_scale)`
returns a plain `Denoiser` applying classifier-free guidance with those prompts, so samplers and the
discriminator guidance wrap it unchanged. Frozen bases run in half precision on CUDA (`dtype="auto"`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avgen.diffusion.conversions import x0_from_eps, x0_from_v
from avgen.diffusion.denoiser import Denoiser, freeze
from avgen.diffusion.schedule import NoiseSchedule
from avgen.sampling.cost import record
from avgen.weights import resolve

REQUIRED = {
    "audioldm": ("unet", "text_encoder", "tokenizer", "scheduler"),
    "animatediff": ("unet", "text_encoder", "tokenizer", "scheduler"),
}


def check_layout(path: str | Path | None, kind: str, key: str) -> Path:
    """A pipeline directory (local, or a weights registry name: avgen.weights) with the sub-folders `kind`
    needs, or a clear error naming `key`."""
    if not path:
        raise ValueError(
            f"{key}: required (a {kind} pipeline directory, as written by save_pretrained, or a "
            "weights name: avgen weights)"
        )
    p = resolve(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{key}={p}: no such directory (nor a weights name: avgen weights)")
    missing = [d for d in REQUIRED[kind] if not (p / d).is_dir()]
    if missing:
        raise ValueError(f"{key}={p}: not a {kind} pipeline layout, missing {', '.join(f'{d}/' for d in missing)}")
    return p


def schedule_from(path: Path) -> tuple[NoiseSchedule, str]:
    """The base's own noise schedule and prediction type, from its scheduler_config.json."""
    cfg = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
    schedule = NoiseSchedule(
        cfg.get("num_train_timesteps", 1000),
        cfg.get("beta_schedule", "linear"),
        cfg.get("beta_start", 1e-4),
        cfg.get("beta_end", 0.02),
    )
    prediction = {"epsilon": "eps", "v_prediction": "v"}.get(cfg.get("prediction_type", "epsilon"))
    if prediction is None:
        raise ValueError(f"{path}/scheduler: prediction_type {cfg.get('prediction_type')!r} is not supported")
    return schedule, prediction


def resolve_dtype(dtype: str) -> torch.dtype:
    if dtype == "auto":
        return torch.float16 if torch.cuda.is_available() else torch.float32
    return getattr(torch, dtype)


class TextBase(nn.Module):
    """One frozen text-conditioned base for one modality."""

    modality: str

    def __init__(self, path: Path, dtype: str):
        super().__init__()
        from transformers import AutoTokenizer

        self.path, self.dtype = path, resolve_dtype(dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer")
        schedule, self.prediction = schedule_from(path)
        self.schedules = nn.ModuleDict({self.modality: schedule})
        self._cache: dict[str, dict[str, Tensor]] = {}

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def embed_text(self, prompts: list[str]) -> dict[str, Tensor]:  # pragma: no cover - per adapter
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> dict[str, Tensor]:
        """{"tokens": (B, L, D) or absent, "pooled": (B, D)}; each distinct prompt is encoded once."""
        new = sorted({p for p in prompts if p not in self._cache})
        if new:
            out = self.embed_text(new)
            for i, p in enumerate(new):
                self._cache[p] = {k: v[i] for k, v in out.items()}
        return {k: torch.stack([self._cache[p][k] for p in prompts]) for k in self._cache[prompts[0]]}

    def eps(self, x: Tensor, t: Tensor, text: dict[str, Tensor]) -> Tensor:  # pragma: no cover - per adapter
        raise NotImplementedError

    @torch.no_grad()
    def guided_x0(
        self, x: Tensor, t: Tensor, cond: dict[str, Tensor], uncond: dict[str, Tensor], cfg_scale: float
    ) -> Tensor:
        """x0 from the CFG noise prediction eps_u + w (eps_c - eps_u) (Ho & Salimans 2022); w = 1: conditional."""
        if cfg_scale == 1.0:
            out = self.eps(x, t, cond)
        else:
            both = self.eps(torch.cat([x, x]), torch.cat([t, t]), {k: torch.cat([uncond[k], cond[k]]) for k in cond})
            out_u, out_c = both.chunk(2)
            out = out_u + cfg_scale * (out_c - out_u)
        abar = self.schedules[self.modality].abar(t, x.ndim).to(x.dtype)
        return (x0_from_eps if self.prediction == "eps" else x0_from_v)(x, out, abar)


class AudioLDMBase(TextBase):
    modality = "audio"

    def __init__(self, path: str | Path, dtype: str = "auto"):
        from diffusers import UNet2DConditionModel
        from transformers import ClapTextModelWithProjection

        path = check_layout(path, "audioldm", "method.bases.text.audio")
        super().__init__(path, dtype)
        self.unet = freeze(UNet2DConditionModel.from_pretrained(path / "unet", torch_dtype=self.dtype))
        self.text_encoder = freeze(ClapTextModelWithProjection.from_pretrained(path / "text_encoder"))

    def embed_text(self, prompts: list[str]) -> dict[str, Tensor]:
        ids = self.tokenizer(prompts, padding="max_length", truncation=True, return_tensors="pt").to(self.device)
        emb = self.text_encoder(input_ids=ids.input_ids, attention_mask=ids.attention_mask).text_embeds
        return {"pooled": F.normalize(emb, dim=-1)}  # AudioLDM conditions on the unit-norm CLAP embedding

    def eps(self, x: Tensor, t: Tensor, text: dict[str, Tensor]) -> Tensor:
        out = self.unet(x.to(self.dtype), t, encoder_hidden_states=None, class_labels=text["pooled"].to(self.dtype))
        return out.sample.to(x.dtype)


class AnimateDiffBase(TextBase):
    modality = "video"

    def __init__(self, path: str | Path, motion_adapter: str | Path | None = None, dtype: str = "auto"):
        from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
        from transformers import CLIPTextModel

        path = check_layout(path, "animatediff", "method.bases.text.video")
        super().__init__(path, dtype)
        kind = json.loads((path / "unet" / "config.json").read_text()).get("_class_name")
        if kind == "UNetMotionModel":
            unet = UNetMotionModel.from_pretrained(path / "unet")
        else:  # an SD pipeline plus a motion adapter
            adapter = resolve(motion_adapter) if motion_adapter else path / "motion_adapter"
            if not (adapter / "config.json").is_file():
                raise ValueError(
                    f"method.bases.text.video={path}: unet/ is a {kind}, so a MotionAdapter is needed: "
                    f"none at {adapter} (set method.bases.text.motion_adapter)"
                )
            unet = UNetMotionModel.from_unet2d(
                UNet2DConditionModel.from_pretrained(path / "unet"), MotionAdapter.from_pretrained(adapter)
            )
        self.unet = freeze(unet.to(self.dtype))
        self.text_encoder = freeze(CLIPTextModel.from_pretrained(path / "text_encoder"))

    def embed_text(self, prompts: list[str]) -> dict[str, Tensor]:
        ids = self.tokenizer(prompts, padding="max_length", truncation=True, return_tensors="pt").to(self.device)
        out = self.text_encoder(input_ids=ids.input_ids)
        return {"tokens": out.last_hidden_state, "pooled": out.pooler_output}

    def eps(self, x: Tensor, t: Tensor, text: dict[str, Tensor]) -> Tensor:
        sample = x.to(self.dtype).permute(0, 2, 1, 3, 4)  # (B, F, C, h, w) -> (B, C, F, h, w)
        # the UNet runs frames as a batch and expects each frame's prompt tokens: (B, L, D) -> (B*F, L, D)
        tokens = text["tokens"].to(self.dtype).repeat_interleave(x.shape[1], dim=0)
        out = self.unet(sample, t, encoder_hidden_states=tokens).sample
        return out.permute(0, 2, 1, 3, 4).to(x.dtype)  # (B, C, F, h, w) -> (B, F, C, h, w)


class PromptedBases(Denoiser):
    """The text bases bound to one batch of prompts, with CFG per modality: a plain joint `Denoiser`."""

    def __init__(self, bases: dict[str, TextBase], prompts: list[str], cfg_scales: dict[str, float]):
        super().__init__()
        self.bases = bases
        self.schedules = nn.ModuleDict({m: b.schedules[m] for m, b in bases.items()})
        self.cond = {m: b.encode(prompts) for m, b in bases.items()}
        self.uncond = {m: b.encode([""] * len(prompts)) for m, b in bases.items()}
        self.cfg_scales = {m: float(cfg_scales.get(m, 1.0)) for m in bases}

    @torch.no_grad()
    def forward(self, x: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        if any(scale != 1.0 for scale in self.cfg_scales.values()):
            record("cfg_unconditional", t.shape[0])  # classifier-free guidance: an empty-prompt pass
        return {
            m: b.guided_x0(x[m], t, self.cond[m], self.uncond[m], self.cfg_scales[m]) for m, b in self.bases.items()
        }

    def pooled_text(self, empty: bool = False) -> dict[str, Tensor]:
        """Per-modality pooled prompt embeddings, for the discriminator's text input."""
        src = self.uncond if empty else self.cond
        return {m: e["pooled"] for m, e in src.items()}


class TextBases(nn.Module):
    """{"audio": AudioLDMBase, "video": AnimateDiffBase}, loaded from local pipeline directories."""

    def __init__(
        self,
        audio: str | Path | None,
        video: str | Path | None,
        motion_adapter: str | Path | None = None,
        dtype: str = "auto",
    ):
        super().__init__()
        self.audio, self.video = AudioLDMBase(audio, dtype), AnimateDiffBase(video, motion_adapter, dtype)

    def bind(self, prompts: list[str], cfg_scales: dict[str, float]) -> PromptedBases:
        return PromptedBases({"audio": self.audio, "video": self.video}, prompts, cfg_scales)


def check_text_dims(discriminator: nn.Module, bases: TextBases) -> None:
    """The discriminator's pooled-text inputs must match the text encoders the bases carry."""
    widths = {m: b.encode([""])["pooled"].shape[-1] for m, b in (("audio", bases.audio), ("video", bases.video))}
    proj = getattr(discriminator, "text_proj", {})
    have = {m: proj[m].in_features for m in proj} if len(proj) else {}
    if have != widths:
        raise ValueError(f"model.text_dims must be the bases' pooled text widths {widths} (got {have or None})")
