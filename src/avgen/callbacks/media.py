"""Sample videos with audio and spectrogram images at validation, for watching a run learn.

After each validation (rank zero only) a joint module generates `num` pairs from a fixed seed (the same noise
every time, so successive validations are comparable), decoded as evaluation decodes them. The files go to
`<output_dir>/val_media/step_<N>/` (sample_<i>.mp4, spectrogram_<i>.png); with a WandbLogger they are also
logged as `val/samples` (wandb.Video) and `val/spectrograms` (wandb.Image) at the training step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from avgen.data.datamodule import clip_shapes, draw_prompts, rep_metadata
from avgen.decoding.decode import AudioDecoder, VideoDecoder
from avgen.decoding.export import write_sample


def spectrogram_png(path: Path, mel: np.ndarray, video: np.ndarray, title: str) -> Path:
    """The generated audio representation (mel; latents' first channel; waveform samples) above a strip of the
    generated frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 4), gridspec_kw={"height_ratios": [2, 1]})
    if mel.ndim == 3:  # AudioLDM latents (C, T, M): the first channel, time along x
        mel = mel[0].T
    top.imshow(mel if mel.ndim == 2 else mel.reshape(1, -1), origin="lower", aspect="auto", cmap="magma")
    top.set_title(title)
    top.set_xlabel("audio frame")
    frames = video[:: max(1, len(video) // 8)]  # (F', 3, H, W), at most ~8 frames
    bottom.imshow(np.concatenate(list(frames.transpose(0, 2, 3, 1)), axis=1))  # side by side: (H, F'*W, 3)
    bottom.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


class ValidationMedia(L.Callback):
    def __init__(
        self,
        num: int = 2,
        seed: int = 0,
        steps: int = 20,
        sampler: str = "ddim",
        sampler_kwargs: dict[str, Any] | None = None,
    ):
        self.num, self.seed, self.steps, self.sampler = num, seed, steps, sampler
        self.sampler_kwargs = dict(sampler_kwargs or {})
        self._decoders: tuple[VideoDecoder, AudioDecoder] | None = None  # built once: they may load VAEs

    @torch.no_grad()
    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not (self.num and module.joint and trainer.is_global_zero and not trainer.sanity_checking):
            return
        dm = trainer.datamodule
        shapes = clip_shapes(dm)
        if self._decoders is None:
            video_meta, audio_meta = rep_metadata(dm)
            self._decoders = (
                VideoDecoder(video_meta, device=str(module.device)),
                AudioDecoder(audio_meta, device=str(module.device)),
            )
        video_dec, audio_dec = self._decoders
        was_training = module.training
        module.eval()
        seeds = list(range(self.seed, self.seed + self.num))  # as evaluation draws its first samples
        prompts = {"prompts": draw_prompts(dm, self.num, seeds=seeds)} if module.needs_prompts else {}
        x = module.generate(
            {m: (self.num, *s) for m, s in shapes.items()},
            steps=self.steps,
            sampler=self.sampler,
            seeds=seeds,
            **prompts,
            **self.sampler_kwargs,
        )
        module.train(was_training)
        out = Path(trainer.default_root_dir) / "val_media" / f"step_{trainer.global_step:07d}"
        out.mkdir(parents=True, exist_ok=True)
        videos, images = [], []
        audio = x["audio"].float().cpu().numpy()
        for i, wav in enumerate(audio_dec.batch(audio)):
            v, a = x["video"][i].float().cpu().numpy(), audio[i]
            frames = video_dec(v)
            videos.append(write_sample(out / f"sample_{i}.mp4", frames, wav, video_dec.fps, audio_dec.sample_rate))
            images.append(
                spectrogram_png(
                    out / f"spectrogram_{i}.png", a.squeeze(), frames, f"step {trainer.global_step}, sample {i}"
                )
            )
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                import wandb

                logger.experiment.log(
                    {
                        "val/samples": [wandb.Video(str(p), format="mp4") for p in videos],
                        "val/spectrograms": [wandb.Image(str(p)) for p in images],
                        "trainer/global_step": trainer.global_step,
                    }
                )
