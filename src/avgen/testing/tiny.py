"""Tiny, randomly initialised stand-ins of the pretrained networks avgen loads from local paths, built from
config and written with `save_pretrained`, so that every loader runs for real without downloads (tests, smoke
targets). Their outputs mean nothing; their layouts are the real ones.
"""

from __future__ import annotations

from pathlib import Path


def tiny_clap(path: str | Path, seed: int = 0) -> Path:
    """A transformers CLAP (HTSAT audio tower + RoBERTa text tower), its feature extractor and a word-level
    tokenizer with RoBERTa's special tokens: 48 kHz input, 1 s windows, 16-d joint embeddings."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(seed)
    text = dict(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=80,
        projection_dim=16,
    )
    audio = dict(
        window_size=8,
        num_mel_bins=32,
        spec_size=128,
        patch_size=4,
        patch_stride=(4, 4),
        depths=[1, 1],
        num_attention_heads=[2, 2],
        hidden_size=32,
        patch_embeds_hidden_size=16,
        projection_dim=16,
        enable_fusion=False,
    )
    model = ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=16)).eval()
    extractor = ClapFeatureExtractor(
        feature_size=32,
        sampling_rate=48000,
        hop_length=480,
        max_length_s=1,
        fft_window_size=1024,
        truncation="rand_trunc",
    )
    path = Path(path)
    model.save_pretrained(path)
    extractor.save_pretrained(path)
    tiny_tokenizer("<s>", "</s>", "<pad>", "<unk>").save_pretrained(path)
    return path


WORDS = (
    "a an the of in on and with dog cat bird car rain wind music piano guitar drum water sea waves fire people "
    "talking engine beach forest city night playing barking singing"
).split()


def tiny_tokenizer(bos: str, eos: str, pad: str, unk: str, max_length: int = 16):
    """A word-level tokenizer over a few dozen sound/scene words, written on the spot (no hub)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {bos: 0, pad: 1, eos: 2, unk: 3, **{w: i + 4 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A {eos}", special_tokens=[(bos, 0), (eos, 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk, model_max_length=max_length
    )


def tiny_audioldm(path: str | Path, n_mels: int = 16, seed: int = 0) -> Path:
    """An AudioLDM-layout pipeline directory (unet/ with CLAP class-embedding conditioning, vae/ on 1-channel
    mels (x2 down), text_encoder/ ClapTextModelWithProjection, tokenizer/, scheduler/ scaled_linear DDIM,
    vocoder/ SpeechT5HifiGan with hop 160 at 16 kHz)."""
    import torch
    from diffusers import AudioLDMPipeline, AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import ClapTextConfig, ClapTextModelWithProjection, SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=(8, 16),
        class_embed_type="simple_projection",
        projection_class_embeddings_input_dim=8,
        class_embeddings_concat=True,
    )
    vae = AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=1,
        out_channels=1,
        latent_channels=4,
        norm_num_groups=8,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
    )
    text = ClapTextModelWithProjection(
        ClapTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
            hidden_size=8,
            intermediate_size=37,
            num_attention_heads=1,
            num_hidden_layers=1,
            vocab_size=len(WORDS) + 4,
            projection_dim=8,
            max_position_embeddings=24,
        )
    )
    vocoder = SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=n_mels,
            sampling_rate=16000,
            upsample_initial_channel=16,
            upsample_rates=[10, 16],
            upsample_kernel_sizes=[20, 32],
            resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3]],
            normalize_before=False,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False
    )
    pipe = AudioLDMPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tiny_tokenizer("<s>", "</s>", "<pad>", "<unk>"),
        unet=unet,
        scheduler=scheduler,
        vocoder=vocoder,
    )
    pipe.save_pretrained(Path(path))
    return Path(path)


def tiny_animatediff(path: str | Path, seed: int = 0) -> Path:
    """An AnimateDiff-layout pipeline directory (unet/ UNetMotionModel = SD UNet + motion_adapter/, vae/ x2 down,
    text_encoder/ CLIPTextModel, tokenizer/, scheduler/ linear-beta DDIM)."""
    import torch
    from diffusers import AnimateDiffPipeline, AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        norm_num_groups=4,
        attention_head_dim=4,
    )
    adapter = MotionAdapter(
        block_out_channels=(8, 16),
        motion_layers_per_block=1,
        motion_norm_num_groups=4,
        motion_num_attention_heads=2,
        motion_max_seq_length=32,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
            hidden_size=16,
            intermediate_size=37,
            num_attention_heads=2,
            num_hidden_layers=1,
            vocab_size=len(WORDS) + 4,
            projection_dim=16,
            max_position_embeddings=24,
        )
    )
    vae = AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        norm_num_groups=4,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        scaling_factor=0.18215,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False, steps_offset=1
    )
    pipe = AnimateDiffPipeline(
        vae=vae,
        text_encoder=text,
        unet=unet,
        motion_adapter=adapter,
        scheduler=scheduler,
        tokenizer=tiny_tokenizer("<|startoftext|>", "<|endoftext|>", "<|pad|>", "<|unk|>"),
    )
    pipe.save_pretrained(Path(path))
    return Path(path)
