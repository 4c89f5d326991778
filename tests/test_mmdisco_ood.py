"""MMDisCo out of domain: diffusers text-to-audio / text-to-video bases loaded from local directories (tiny
random pipelines built from config), CFG on the bases and on the discriminator residual, text dropout, and
per-modality schedules."""

from __future__ import annotations

import shutil

import pytest
import torch
from diffusers import DDIMScheduler

from avgen.diffusion.conversions import eps_from_x0
from avgen.methods.mmdisco.guidance import DiscriminatorGuidance, TextDiscriminator, drop_prompts
from avgen.methods.mmdisco.losses import logit_gradients
from avgen.methods.mmdisco.text_bases import AnimateDiffBase, AudioLDMBase, TextBases
from avgen.models.discriminators.av_discriminator import AVDiscriminator

PROMPTS = ["a dog barking", "rain on the sea"]


@pytest.fixture(scope="module")
def bases(tiny_pipelines):
    return TextBases(tiny_pipelines["audio"], tiny_pipelines["video"], dtype="float32")


def latents(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"audio": torch.randn(batch, 4, 8, 8, generator=g), "video": torch.randn(batch, 4, 4, 4, 4, generator=g)}


def text_discriminator(bases):
    torch.manual_seed(0)
    net = AVDiscriminator(
        video_channels=4,
        audio_channels=4 * 8,
        base_channels=8,
        channel_mult=(1,),
        blocks_per_level=1,
        head="mlp",
        head_dim=16,
        text_dims={"audio": 8, "video": 16},
    )
    with torch.no_grad():  # as if trained: the zero-initialised output convs would hide the conditioning
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net


def test_each_base_keeps_its_own_scheduler(bases, tiny_pipelines):
    for m, base in (("audio", bases.audio), ("video", bases.video)):
        own = DDIMScheduler.from_pretrained(tiny_pipelines[m] / "scheduler").alphas_cumprod
        assert torch.allclose(base.schedules[m].alphas_cumprod, own.float())
    assert not torch.allclose(
        bases.audio.schedules["audio"].alphas_cumprod, bases.video.schedules["video"].alphas_cumprod
    )


def test_guidance_uses_each_modalitys_own_sigma(bases):
    bound = bases.bind(PROMPTS, {"audio": 1.0, "video": 1.0})
    disc = TextDiscriminator(text_discriminator(bases), bound.pooled_text(), bound.pooled_text(empty=True))
    guided = DiscriminatorGuidance(bound, disc, {"audio": 2.0, "video": 2.0})
    x, t = latents(), torch.tensor([300, 700])
    x0_base, x0_guided = bound(x, t), guided(x, t)
    _, grads = logit_gradients(disc, x, t, create_graph=False)
    for m in x:
        abar = (
            bases.audio.schedules["audio"].abar(t, x[m].ndim)
            if m == "audio"
            else bases.video.schedules["video"].abar(t, x[m].ndim)
        )
        delta = eps_from_x0(x[m], x0_guided[m], abar) - eps_from_x0(x[m], x0_base[m], abar)
        assert torch.allclose(delta, -2.0 * (1 - abar).sqrt() * grads[m], atol=1e-4)  # MMDisCo Eq. 12


def test_base_cfg_combines_conditional_and_empty_prompt(bases):
    x, t = latents()["audio"], torch.tensor([10, 900])
    base = bases.audio
    cond, uncond = base.encode(PROMPTS), base.encode(["", ""])
    abar = base.schedules["audio"].abar(t, x.ndim)
    e_c, e_u = base.eps(x, t, cond), base.eps(x, t, uncond)
    assert torch.allclose(base.guided_x0(x, t, cond, uncond, 1.0), base.guided_x0(x, t, cond, uncond, 1.0))
    assert torch.allclose(eps_from_x0(x, base.guided_x0(x, t, cond, uncond, 1.0), abar), e_c, atol=1e-4)
    assert torch.allclose(
        eps_from_x0(x, base.guided_x0(x, t, cond, uncond, 2.5), abar), e_u + 2.5 * (e_c - e_u), atol=1e-4
    )
    assert not torch.allclose(e_c, e_u)


def test_prompt_embeddings_are_cached(bases, monkeypatch):
    calls = []
    original = AnimateDiffBase.embed_text

    def counting(self, prompts):
        calls.append(list(prompts))
        return original(self, prompts)

    monkeypatch.setattr(AnimateDiffBase, "embed_text", counting)
    first = bases.video.encode(["a cat singing", "a cat singing", "fire at night"])
    again = bases.video.encode(["fire at night"])
    assert calls == [["a cat singing", "fire at night"]]
    assert torch.equal(first["pooled"][2], again["pooled"][0]) and first["tokens"].shape[0] == 3


def test_discriminator_residual_cfg(bases):
    bound = bases.bind(PROMPTS, {})
    net = text_discriminator(bases)
    cond, empty = bound.pooled_text(), bound.pooled_text(empty=True)
    x, t = latents(), torch.tensor([100, 500])
    # scale 1 with empty text is exactly the unconditional path
    assert torch.equal(TextDiscriminator(net, empty, empty, 1.0)(x, t), net(x, t, text=empty))
    d_c, d_u = net(x, t, text=cond), net(x, t, text=empty)
    assert not torch.allclose(d_c, d_u)  # the text reaches the logit
    assert torch.allclose(TextDiscriminator(net, cond, empty, 3.0)(x, t), d_u + 3.0 * (d_c - d_u), atol=1e-5)
    with pytest.raises(ValueError, match="text-conditioned"):
        net(x, t)


def test_text_dropout_rate():
    g = torch.Generator().manual_seed(0)
    dropped = drop_prompts(["x"] * 20000, 0.1, g)
    assert abs(dropped.count("") / 20000 - 0.1) < 0.01
    assert drop_prompts(["x", "y"], 0.0) == ["x", "y"] and drop_prompts(["x", "y"], 1.0) == ["", ""]


def test_layout_errors_name_the_key(tmp_path, tiny_pipelines):
    with pytest.raises(ValueError, match="method.bases.text.audio: required"):
        AudioLDMBase(None)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        AudioLDMBase(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_pipelines["audio"], broken)
    shutil.rmtree(broken / "unet")
    with pytest.raises(ValueError, match="missing unet/"):
        AudioLDMBase(broken)


@pytest.mark.slow
def test_smoke_ood_end_to_end(tmp_path):
    """`make smoke-ood`: tiny pipelines -> OOD store -> fake cache with prompts -> discriminator steps -> mp4."""
    import json

    import av

    from avgen.cli.main import main
    from avgen.methods.mmdisco.module import MMDisCoModule

    assert main(["smoke-ood", f"out={tmp_path}"]) == 0
    fake = [json.loads(line) for line in (tmp_path / "fake_cache" / "manifest.jsonl").read_text().splitlines()]
    assert len(fake) == 8 and all(r["caption"].endswith("ball bouncing") for r in fake)  # the store's captions
    with av.open(str(tmp_path / "run" / "samples" / "sample_000.mp4")) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["state_dict"] and not any(k.startswith("bases.") for k in ckpt["state_dict"])  # bases stay out
    assert (tmp_path / "run" / "val_media" / "step_0000003" / "sample_0.mp4").is_file()
    # the checkpoint reloads without the command line: the bases come from their own directories
    from hydra.utils import instantiate

    cfg = ckpt["avgen_config"]
    module = instantiate(cfg["method"], net=instantiate(cfg["model"]))
    assert isinstance(module, MMDisCoModule) and module.needs_prompts
    module.load_state_dict(ckpt["state_dict"])  # strict: every discriminator key present, bases filled in
    assert torch.equal(module.net.text_proj["audio"].weight, ckpt["state_dict"]["net.text_proj.audio.weight"])


def test_ood_experiment_requires_the_pipeline_paths(capsys):
    from avgen.cli.main import main

    assert main(["train", "experiment=mmdisco_landscape_audioldm_animatediff", "trainer=cpu", "logger=csv"]) == 2
    err = capsys.readouterr().err
    assert "method.bases.text.audio" in err and "method.bases.text.video" in err
