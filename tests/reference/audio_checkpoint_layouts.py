"""Test-only transcriptions of the public checkpoints' state-dict layouts (name -> shape), read off the
reference code that loads them with strict=True:

- PANNs Cnn14 (`Cnn14_mAP=0.431.pth` at 32 kHz, `Cnn14_16k_mAP=0.438.pth` at 16 kHz; their `model` entry):
  qiuqiangkong/audioset_tagging_cnn `pytorch/models.py` `Cnn14` = av-benchmark `av_bench/panns/models.py`
  `Cnn14`, with torchlibrosa's `Spectrogram` (`stft.conv_real`/`conv_imag`, Conv1d(1, n_fft // 2 + 1, n_fft),
  no bias) and `LogmelFilterBank` (`melW`, (n_fft // 2 + 1, 64)). BatchNorm layers carry `num_batches_tracked`.
- VGGish (`vggish-10086976.pth`): harritaylor/torchvggish `torchvggish/vggish.py` `VGG` (`make_layers()`:
  Conv2d at indices 0, 3, 6, 8, 11, 13; `embeddings` Linear at 0, 2, 4), loaded before its `pproc` exists.
- PaSST (`passt-s-f128-p16-s10-ap.476-swa.pt`, PaSST release v0.0.1-audioset): kkoutini/passt_hear21
  `hear21passt/models/passt.py` `PaSST` as `get_model(arch="passt_s_swa_p16_128_ap476")` builds it (distilled,
  embed 768, depth 12, qkv_bias=True, patch 16 stride 10 over 128 x 998: grid 12 x 99, 527 classes;
  `patch_embed.norm` and `pre_logits` are Identity, so hold nothing) and loads it with strict=True.
- AudioCLIP's audio encoder (the `audio.` entries of `AudioCLIP-Full-Training.pt`, AndreyGuzhov/AudioCLIP
  release v0.1): `model/audioclip.py` builds `ESResNeXtFBSP(n_fft=2048, win_length=1654, num_classes=1024,
  apply_attention=True, ...)` (`model/esresnet/fbsp.py`, `base.py`, `attention.py`): torchvision's ResNeXt-50
  32x4d layout (`conv1`, `bn1`, `layer1..4` of Bottlenecks with `downsample.0/1` on each stage's first block),
  the five `Attention2d` gates (`conv_depth` depthwise with bias, `conv_point` 1x1 with bias, `bn`), `fc`
  2048 -> 1024, `LinearFBSP(1025, bias=False)` (`m`, `fb`, `fc`, and `bias` = Parameter(None): an empty
  tensor), and the registered `window` buffer (1654).
"""

from __future__ import annotations


def _bn(name: str, c: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{name}.weight": (c,),
        f"{name}.bias": (c,),
        f"{name}.running_mean": (c,),
        f"{name}.running_var": (c,),
        f"{name}.num_batches_tracked": (),
    }


def cnn14_layout(n_fft: int) -> dict[str, tuple[int, ...]]:
    bins = n_fft // 2 + 1
    out = {
        "spectrogram_extractor.stft.conv_real.weight": (bins, 1, n_fft),
        "spectrogram_extractor.stft.conv_imag.weight": (bins, 1, n_fft),
        "logmel_extractor.melW": (bins, 64),
        **_bn("bn0", 64),
    }
    for i, (cin, cout) in enumerate([(1, 64), (64, 128), (128, 256), (256, 512), (512, 1024), (1024, 2048)], 1):
        out[f"conv_block{i}.conv1.weight"] = (cout, cin, 3, 3)
        out[f"conv_block{i}.conv2.weight"] = (cout, cout, 3, 3)
        out.update(_bn(f"conv_block{i}.bn1", cout))
        out.update(_bn(f"conv_block{i}.bn2", cout))
    out.update(
        {
            "fc1.weight": (2048, 2048),
            "fc1.bias": (2048,),
            "fc_audioset.weight": (527, 2048),
            "fc_audioset.bias": (527,),
        }
    )
    return out


CNN14_32K = cnn14_layout(1024)  # Cnn14_mAP=0.431.pth: window 1024
CNN14_16K = cnn14_layout(512)  # Cnn14_16k_mAP=0.438.pth: window 512

VGGISH = {
    "features.0.weight": (64, 1, 3, 3),
    "features.0.bias": (64,),
    "features.3.weight": (128, 64, 3, 3),
    "features.3.bias": (128,),
    "features.6.weight": (256, 128, 3, 3),
    "features.6.bias": (256,),
    "features.8.weight": (256, 256, 3, 3),
    "features.8.bias": (256,),
    "features.11.weight": (512, 256, 3, 3),
    "features.11.bias": (512,),
    "features.13.weight": (512, 512, 3, 3),
    "features.13.bias": (512,),
    "embeddings.0.weight": (4096, 12288),
    "embeddings.0.bias": (4096,),
    "embeddings.2.weight": (4096, 4096),
    "embeddings.2.bias": (4096,),
    "embeddings.4.weight": (128, 4096),
    "embeddings.4.bias": (128,),
}


def passt_layout(embed: int = 768, depth: int = 12, classes: int = 527, grid: tuple[int, int] = (12, 99)):
    out = {
        "cls_token": (1, 1, embed),
        "dist_token": (1, 1, embed),
        "new_pos_embed": (1, 2, embed),
        "freq_new_pos_embed": (1, embed, grid[0], 1),
        "time_new_pos_embed": (1, embed, 1, grid[1]),
        "patch_embed.proj.weight": (embed, 1, 16, 16),
        "patch_embed.proj.bias": (embed,),
    }
    for i in range(depth):
        b = f"blocks.{i}"
        out.update(
            {
                f"{b}.norm1.weight": (embed,),
                f"{b}.norm1.bias": (embed,),
                f"{b}.attn.qkv.weight": (3 * embed, embed),
                f"{b}.attn.qkv.bias": (3 * embed,),
                f"{b}.attn.proj.weight": (embed, embed),
                f"{b}.attn.proj.bias": (embed,),
                f"{b}.norm2.weight": (embed,),
                f"{b}.norm2.bias": (embed,),
                f"{b}.mlp.fc1.weight": (4 * embed, embed),
                f"{b}.mlp.fc1.bias": (4 * embed,),
                f"{b}.mlp.fc2.weight": (embed, 4 * embed),
                f"{b}.mlp.fc2.bias": (embed,),
            }
        )
    out.update(
        {
            "norm.weight": (embed,),
            "norm.bias": (embed,),
            "head.0.weight": (embed,),
            "head.0.bias": (embed,),
            "head.1.weight": (classes, embed),
            "head.1.bias": (classes,),
            "head_dist.weight": (classes, embed),
            "head_dist.bias": (classes,),
        }
    )
    return out


PASST_S = passt_layout()  # passt-s-f128-p16-s10-ap.476-swa.pt


def audioclip_audio_layout(
    layers: tuple[int, ...] = (3, 4, 6, 3), groups: int = 32, width_per_group: int = 4, embed: int = 1024
) -> dict[str, tuple[int, ...]]:
    out = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    # Attention2d(in, out, num_kernels=1, kernel): att1 (3, 1), att2 (1, 5), att3 (3, 1), att4 (1, 5), att5 (3, 5)
    kernels = [(3, 1), (1, 5), (3, 1), (1, 5), (3, 5)]
    inplanes, stage_in = 64, 64
    for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), 1):
        width = int(planes * (width_per_group / 64.0)) * groups
        for j in range(blocks):
            b = f"layer{i}.{j}"
            cin = inplanes if j == 0 else planes * 4
            out[f"{b}.conv1.weight"] = (width, cin, 1, 1)
            out.update(_bn(f"{b}.bn1", width))
            out[f"{b}.conv2.weight"] = (width, width // groups, 3, 3)
            out.update(_bn(f"{b}.bn2", width))
            out[f"{b}.conv3.weight"] = (planes * 4, width, 1, 1)
            out.update(_bn(f"{b}.bn3", planes * 4))
            if j == 0:  # stride 2 (layers 2-4) or 64 -> 256 channels (layer 1)
                out[f"{b}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                out.update(_bn(f"{b}.downsample.1", planes * 4))
        inplanes = planes * 4
        a = f"att{i}"
        out[f"{a}.conv_depth.weight"] = (stage_in, 1, *kernels[i - 1])
        out[f"{a}.conv_depth.bias"] = (stage_in,)
        out[f"{a}.conv_point.weight"] = (inplanes, stage_in, 1, 1)
        out[f"{a}.conv_point.bias"] = (inplanes,)
        out.update(_bn(f"{a}.bn", inplanes))
        stage_in = inplanes
    out.update(
        {
            "att5.conv_depth.weight": (inplanes, 1, *kernels[4]),
            "att5.conv_depth.bias": (inplanes,),
            "att5.conv_point.weight": (inplanes, inplanes, 1, 1),
            "att5.conv_point.bias": (inplanes,),
            **_bn("att5.bn", inplanes),
            "fc.weight": (embed, inplanes),
            "fc.bias": (embed,),
            "fbsp.m": (1025,),
            "fbsp.fb": (1025,),
            "fbsp.fc": (1025,),
            "fbsp.bias": (0,),
            "window": (1654,),
        }
    )
    return out


AUDIOCLIP_AUDIO = audioclip_audio_layout()  # AudioCLIP-Full-Training.pt, its `audio.` entries without the prefix
