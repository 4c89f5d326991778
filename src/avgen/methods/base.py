"""The contract every method implements: what evaluation, sampling, the validation media and `compare` rely on.

A method is a LightningModule built by Hydra from `configs/method/<name>.yaml` with the network as `net`
(`_target_: avgen.methods.<name>.module.<Class>`). To add one, subclass `Method` and provide:

- `modalities`: the modalities it generates, `("audio", "video")` for a joint model. Evaluation scores joint
  samples of joint methods only; single-modal ones (MMDisCo's bases) are scored through the runs that join them.
- `training_step` / `configure_optimizers` (Lightning), logging `train/loss` (the progress line shows it).
- `generate(shapes, steps=..., sampler=..., seeds=None, **kwargs) -> {modality: tensor}`: samples in the
  store's representation. `seeds` (one per sample) must fix each sample's noise from its own seed
  (`sampling.samplers.initial_noise`), so that runs evaluated with one seed are paired sample by sample.
- `conditional = True` if `generate(..., known={modality: x0}, guidance_scale=...)` generates the other
  modality for a given one (video-to-audio, audio-to-video); evaluation then scores v2a.
- `needs_prompts = True` if `generate` takes `prompts=[...]` (one per sample; test-split captions).
- `baseline_settings()`: keyword arguments of `generate` that give the method's no-coupling baseline from the
  same weights (MMDisCo: guidance scales 0 = the independent bases), or None. Evaluation scores the baseline
  on the same seeds and reports the paired difference.
- `variant(cfg)`: what tells runs of this method apart in a comparison (e.g. coupling and eta, the head).
- `extra_scores(dm)`: the method's own quality figures for metrics.json (the vocoder's log-mel error), or {}.
- `compile_networks(**options)`: `compile=true` compiles what can be compiled in place (checkpoint keys
  unchanged) and returns what it compiled; by default the network `net`.
- `prediction`: what its network outputs for the shared denoiser adapter ("v", "eps", or "velocity" on a
  flow schedule); a checkpoint's method config is enough to rebuild its denoiser (MMDisCo's bases do).
"""

from __future__ import annotations

from typing import Any

import lightning as L
from omegaconf import DictConfig


class Method(L.LightningModule):
    modalities: tuple[str, ...] = ()
    conditional: bool = False
    needs_prompts: bool = False
    prediction: str | None = None

    @property
    def joint(self) -> bool:
        return set(self.modalities) == {"audio", "video"}

    def generate(self, shapes: dict[str, tuple[int, ...]], **kwargs: Any) -> dict:
        raise NotImplementedError(f"{type(self).__name__} does not generate samples")

    def baseline_settings(self) -> dict[str, Any] | None:
        return None

    @staticmethod
    def variant(cfg: DictConfig) -> str:
        return ""

    def extra_scores(self, dm: Any) -> dict[str, float]:
        return {}

    def compile_networks(self, **options: Any) -> list[str]:
        """torch.compile in place (`nn.Module.compile`: parameter names and checkpoints unchanged)."""
        self.net.compile(**options)
        return ["net"]
