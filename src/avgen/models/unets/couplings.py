"""Cross-modal couplings of the dual U-Net, applied at every attention block.

- `easy_fusion` (CMMD App. B): no extra attention. Audio features are resampled to the video frame count and
  broadcast over H x W; video features are mean-pooled over H x W and nearest-interpolated to the audio
  length; each branch's own self-attention receives the other's features as extra input channels.
- `rs_mma` (MM-Diffusion's random-shift multimodal attention): video tokens of frame i attend to the audio of
  a window of frames starting at (i + shift) mod F, and audio tokens of frame j to the video frames of the
  window starting at (j + shift) mod F; a new random shift every forward pass; zero-initialised outputs.
  Written as one masked attention over all tokens (batched over frames, no loop per frame).
- `none`: independent branches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avgen.models.unets.blocks import zero_init

COUPLINGS = ("easy_fusion", "rs_mma", "none")


def audio_per_frame(audio: Tensor, frames: int) -> Tensor:
    """(B, C, T) -> (B, C, F): average pooling when T >= F, nearest repetition otherwise."""
    if audio.shape[-1] >= frames:
        return F.adaptive_avg_pool1d(audio, frames)
    return F.interpolate(audio, size=frames, mode="nearest")


def video_per_audio_step(video: Tensor, length: int) -> Tensor:
    """(B, C, F, H, W) -> (B, C, T): mean over H x W, nearest interpolation over time."""
    return F.interpolate(video.mean(dim=(-2, -1)), size=length, mode="nearest")


def frame_of_steps(length: int, frames: int, device: torch.device) -> Tensor:
    """Frame index of each of `length` evenly spread time steps: (length,)."""
    return torch.div(torch.arange(length, device=device) * frames, length, rounding_mode="floor")


class RandomShiftCrossAttention(nn.Module):
    """RS-MMA between a video (B, Cv, F, H, W) and an audio (B, Ca, T) feature map."""

    def __init__(self, video_channels: int, audio_channels: int, head_dim: int = 64, window_frames: int = 1):
        super().__init__()
        self.window = window_frames
        self.v_heads = max(1, video_channels // head_dim)
        self.a_heads = max(1, audio_channels // head_dim)
        self.v_norm, self.a_norm = nn.LayerNorm(video_channels), nn.LayerNorm(audio_channels)
        self.v_query, self.a_kv = (
            nn.Linear(video_channels, video_channels),
            nn.Linear(audio_channels, 2 * video_channels),
        )
        self.a_query, self.v_kv = (
            nn.Linear(audio_channels, audio_channels),
            nn.Linear(video_channels, 2 * audio_channels),
        )
        self.v_out = zero_init(nn.Linear(video_channels, video_channels))
        self.a_out = zero_init(nn.Linear(audio_channels, audio_channels))

    @staticmethod
    def _attend(q: Tensor, kv: Tensor, heads: int, mask: Tensor) -> Tensor:
        """q (B, Lq, C), kv (B, Lk, 2C), mask (Lq, Lk) True = may attend -> (B, Lq, C)."""
        q = q.unflatten(-1, (heads, -1)).transpose(1, 2)  # (B, heads, Lq, d)
        k, v = kv.unflatten(-1, (2, heads, -1)).permute(2, 0, 3, 1, 4)  # 2 x (B, heads, Lk, d)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).flatten(2)

    def forward(self, video: Tensor, audio: Tensor, shift: int | None = None) -> tuple[Tensor, Tensor]:
        b, cv, f, h, w = video.shape
        if shift is None:
            shift = int(torch.randint(f, ()))
        keys_audio = audio if audio.shape[-1] >= f else F.interpolate(audio, size=f, mode="nearest")
        t = keys_audio.shape[-1]
        frame_of_audio = frame_of_steps(t, f, video.device)  # (T,)
        frame_of_video = torch.arange(f, device=video.device).repeat_interleave(h * w)  # (F*H*W,)
        # video frame i sees audio of frames (i + shift) .. (i + shift + window - 1), mod F
        v_mask = (frame_of_audio[None, :] - frame_of_video[:, None] - shift) % f < self.window  # (FHW, T)
        a_frames = frame_of_steps(audio.shape[-1], f, video.device)  # (T_a,)
        a_mask = (frame_of_video[None, :] - a_frames[:, None] - shift) % f < self.window  # (T_a, FHW)

        v_tokens = video.permute(0, 2, 3, 4, 1).reshape(b, f * h * w, cv)  # (B, C, F, H, W) -> (B, FHW, C)
        a_keys = keys_audio.transpose(1, 2)  # (B, C, T) -> (B, T, C)
        a_tokens = audio.transpose(1, 2)
        v_norm, a_norm = self.v_norm(v_tokens), self.a_norm(a_keys)
        v_new = v_tokens + self.v_out(self._attend(self.v_query(v_norm), self.a_kv(a_norm), self.v_heads, v_mask))
        a_new = a_tokens + self.a_out(
            self._attend(self.a_query(self.a_norm(a_tokens)), self.v_kv(v_norm), self.a_heads, a_mask)
        )
        video = v_new.reshape(b, f, h, w, cv).permute(0, 4, 1, 2, 3)  # -> (B, C, F, H, W)
        return video, a_new.transpose(1, 2)  # -> (B, C, T)
