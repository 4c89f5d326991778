"""The state dict layout of av-benchmark's `synchformer_state_dict.pth` (the 24-01-04T16-39-21 Synchformer),
written out from the reference's module definitions (github.com/hkchengrex/av-benchmark, av_bench/synchformer/:
synchformer.py, motionformer.py + video_model_builder.py + vit_helper.py with divided_224_16x4.yaml, ast.py +
hf_src/modeling_ast.py with transformers' ASTConfig defaults, transformer.py), not by running them.
The reference loads the file with `load_state_dict(sd)` (strict), so these are its keys."""

from __future__ import annotations

D, HIDDEN, CLASSES = 768, 3072, 21  # EMBED_DIM / hidden_size, MLP_RATIO 4 / intermediate_size, off_head
VIDEO_DEPTH, AUDIO_DEPTH, SYNC_DEPTH = 12, 12, 3  # VIT.DEPTH, num_hidden_layers, GlobalTransformer n_layer


def _linear(prefix: str, n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (n_out, n_in), f"{prefix}.bias": (n_out,)}


def _norm(prefix: str) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (D,), f"{prefix}.bias": (D,)}


def _encoder_layer(prefix: str) -> dict[str, tuple[int, ...]]:
    """motionformer.BaseEncoderLayer: torch's TransformerEncoderLayer (d_model 768, ff 3072) + cls_token."""
    return {
        f"{prefix}.cls_token": (1, 1, D),
        f"{prefix}.self_attn.in_proj_weight": (3 * D, D),
        f"{prefix}.self_attn.in_proj_bias": (3 * D,),
        **_linear(f"{prefix}.self_attn.out_proj", D, D),
        **_linear(f"{prefix}.linear1", D, HIDDEN),
        **_linear(f"{prefix}.linear2", HIDDEN, D),
        **_norm(f"{prefix}.norm1"),
        **_norm(f"{prefix}.norm2"),
    }


def video_keys() -> dict[str, tuple[int, ...]]:
    """MotionFormer(extract_features=True): pre_logits/head replaced by Identity, temp_attn_agg Identity."""
    p = "vfeat_extractor"
    out = {
        f"{p}.patch_embed.proj.weight": (D, 3, 16, 16),
        f"{p}.patch_embed.proj.bias": (D,),
        f"{p}.patch_embed_3d.proj.weight": (D, 3, 2, 16, 16),  # PATCH_SIZE_TEMP 2
        f"{p}.patch_embed_3d.proj.bias": (D,),
        f"{p}.cls_token": (1, 1, D),
        f"{p}.pos_embed": (1, 14 * 14 + 1, D),
        f"{p}.temp_embed": (1, 8, D),  # TEMPORAL_RESOLUTION 8, POS_EMBED separate
    }
    for i in range(VIDEO_DEPTH):
        b = f"{p}.blocks.{i}"
        for attn in ("attn", "timeattn"):
            out.update(_linear(f"{b}.{attn}.qkv", D, 3 * D))  # QKV_BIAS True
            out.update(_linear(f"{b}.{attn}.proj", D, D))
        out.update(_norm(f"{b}.norm1") | _norm(f"{b}.norm2") | _norm(f"{b}.norm3"))
        out.update(_linear(f"{b}.mlp.fc1", D, HIDDEN) | _linear(f"{b}.mlp.fc2", HIDDEN, D))
    out.update(_norm(f"{p}.norm"))
    out.update(_encoder_layer(f"{p}.spatial_attn_agg"))
    return out


def audio_keys() -> dict[str, tuple[int, ...]]:
    """AST(extract_features=True, max_spec_t=66): the ASTModel only (no classifier), position embeddings cut to
    12 x 6 patches + 2, freq_attn_agg TransformerEncoderLayer, temp_attn_agg Identity."""
    p = "afeat_extractor"
    out = {
        f"{p}.ast.embeddings.cls_token": (1, 1, D),
        f"{p}.ast.embeddings.distillation_token": (1, 1, D),
        f"{p}.ast.embeddings.position_embeddings": (1, 12 * 6 + 2, D),
        f"{p}.ast.embeddings.patch_embeddings.projection.weight": (D, 1, 16, 16),
        f"{p}.ast.embeddings.patch_embeddings.projection.bias": (D,),
    }
    for i in range(AUDIO_DEPTH):
        layer = f"{p}.ast.encoder.layer.{i}"
        for name in ("query", "key", "value"):
            out.update(_linear(f"{layer}.attention.attention.{name}", D, D))
        out.update(_linear(f"{layer}.attention.output.dense", D, D))
        out.update(_linear(f"{layer}.intermediate.dense", D, HIDDEN))
        out.update(_linear(f"{layer}.output.dense", HIDDEN, D))
        out.update(_norm(f"{layer}.layernorm_before") | _norm(f"{layer}.layernorm_after"))
    out.update(_norm(f"{p}.ast.layernorm"))
    out.update(_encoder_layer(f"{p}.freq_attn_agg"))
    return out


def sync_keys() -> dict[str, tuple[int, ...]]:
    """vproj, aproj and GlobalTransformer (RandInitPositionalEncoding(block_shape=[198]), off_head 768 -> 21)."""
    p = "transformer"
    out = {
        **_linear("vproj", D, D),
        **_linear("aproj", D, D),
        **_norm(f"{p}.vis_in_lnorm"),
        **_norm(f"{p}.aud_in_lnorm"),
        f"{p}.OFF_tok": (1, 1, D),
        f"{p}.MOD_tok": (1, 1, D),
        f"{p}.pos_emb_cfg.pos_emb": (1, 198, D),
    }
    for i in range(SYNC_DEPTH):
        b = f"{p}.blocks.{i}"
        out.update(_norm(f"{b}.ln1") | _norm(f"{b}.ln2"))
        for name in ("key", "query", "value", "proj"):
            out.update(_linear(f"{b}.attn.{name}", D, D))
        out.update(_linear(f"{b}.mlp.0", D, HIDDEN) | _linear(f"{b}.mlp.2", HIDDEN, D))
    out.update(_norm(f"{p}.ln_f"))
    out.update(_linear(f"{p}.off_head", D, CLASSES))
    return out


def checkpoint_layout() -> dict[str, tuple[int, ...]]:
    return {**video_keys(), **audio_keys(), **sync_keys()}
