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


def spectrogram_png(
    path: Path,
    mel: np.ndarray,
    video: np.ndarray,
    title: str,
    seconds_per_frame: float | None = None,
    events: dict[str, np.ndarray] | None = None,
) -> Path:
    """The generated audio representation (mel; latents' first channel; waveform samples) with its axes and a
    colour bar, above a strip of the generated frames. `seconds_per_frame` puts the time axis in seconds;
    `events` ({label: times in s}) are drawn over it (on synthetic clips: the video's bounces, which the audio
    should hit, and the audio's detected onsets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 4.5), gridspec_kw={"height_ratios": [2, 1]})
    if mel.ndim == 3:  # AudioLDM latents (C, T, M): the first channel, time along x
        mel = mel[0].T
    image = mel if mel.ndim == 2 else mel.reshape(1, -1)
    extent = None
    if seconds_per_frame is not None:
        extent = (0.0, image.shape[1] * seconds_per_frame, 0, image.shape[0])
    shown = top.imshow(image, origin="lower", aspect="auto", cmap="magma", extent=extent)
    fig.colorbar(shown, ax=top, label="value (normalised)", pad=0.01)
    top.set_title(title, fontsize=9)
    top.set_xlabel("time (s)" if seconds_per_frame is not None else "audio frame")
    top.set_ylabel("mel bin" if mel.ndim == 2 else "")
    for (label, times), (colour, style) in zip((events or {}).items(), (("cyan", "--"), ("white", ":"))):
        for k, t in enumerate(times):
            top.axvline(t, color=colour, linestyle=style, linewidth=1.2, label=label if k == 0 else None)
    if events and any(len(t) for t in events.values()):
        top.legend(loc="upper right", fontsize=7, framealpha=0.6)
    frames = video[:: max(1, len(video) // 8)]  # (F', 3, H, W), at most ~8 frames
    bottom.imshow(np.concatenate(list(frames.transpose(0, 2, 3, 1)), axis=1))  # side by side: (H, F'*W, 3)
    bottom.set_title("frames (evenly spaced)", fontsize=8)
    bottom.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def synthetic_events(probe, frames: np.ndarray, mel: np.ndarray) -> dict[str, np.ndarray]:
    """{label: times (s)} of a synthetic clip: the video's bounces and the audio's onsets (metrics/synthetic)."""
    return {
        "video bounces": probe.refined_events(frames.transpose(0, 2, 3, 1)),  # (F, 3, H, W) -> (F, H, W, 3)
        "audio onsets": probe.audio_onsets(mel),
    }


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
        probe = None
        if dm.store.metadata.get("dataset") == "synthetic" and audio.ndim == 3:  # (B, n_mels, T) log-mels
            from avgen.metrics.synthetic import SyntheticProbe

            probe = SyntheticProbe.from_metadata(*rep_metadata(dm), num_classes=len(dm.store.label_names))
        for i, wav in enumerate(audio_dec.batch(audio)):
            v, a = x["video"][i].float().cpu().numpy(), audio[i]
            frames = video_dec(v)
            videos.append(write_sample(out / f"sample_{i}.mp4", frames, wav, video_dec.fps, audio_dec.sample_rate))
            title = f"step {trainer.global_step}, sample {i}"
            if probe is not None:
                hop = probe.hop_length / probe.sample_rate
                events = synthetic_events(probe, frames, a)
                images.append(spectrogram_png(out / f"spectrogram_{i}.png", a, frames, title, hop, events))
            else:
                images.append(spectrogram_png(out / f"spectrogram_{i}.png", a.squeeze(), frames, title))
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
