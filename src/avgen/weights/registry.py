"""Every pretrained artefact avgen can fetch: one entry each, and nothing else names a source (docs/weights.md).

An entry is either a hub repository at a pinned commit (a whole snapshot filtered by `patterns`, or one
`filename`), or a pinned URL. `sha256` maps a file's path inside the entry to its published SHA-256; a file
without one is trusted on first use (its hash is recorded in the lock and checked on every later use).
Each value below cites where it was read, so that a reviewer can check it against its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Weight:
    name: str
    used_by: str  # the config keys / code that take it
    licence: str  # the licence its publisher states (check before redistributing)
    repo_id: str | None = None  # hub source ...
    revision: str | None = None  # ... at this commit (40 hex digits, never a branch)
    repo_type: str = "model"  # model | space | dataset
    url: str | None = None  # or a pinned URL (one file)
    filename: str | None = None  # one file of the repo / the URL's file name
    patterns: tuple[str, ...] = ()  # a snapshot: the repo files it needs (fnmatch patterns)
    sha256: dict[str, str] = field(default_factory=dict)  # path inside the entry -> published SHA-256

    def __post_init__(self):
        hub, url = self.repo_id is not None, self.url is not None
        if hub == url:
            raise ValueError(f"weights {self.name}: give exactly one of repo_id and url")
        if hub and (self.revision is None or len(self.revision) != 40):
            raise ValueError(f"weights {self.name}: a hub source needs a 40-digit commit revision, got {self.revision}")
        if bool(self.filename) == bool(self.patterns) or (url and not self.filename):
            raise ValueError(f"weights {self.name}: give a filename (one file) or patterns (a hub snapshot)")
        if self.filename and set(self.sha256) - {self.file_key}:
            raise ValueError(f"weights {self.name}: sha256 is keyed by the file name {self.file_key!r}")

    @property
    def is_snapshot(self) -> bool:
        return bool(self.patterns)

    @property
    def source(self) -> str:
        """Where the bytes come from, as a browsable address (also what the lock's records are keyed by)."""
        if self.url:
            return self.url
        repo = f"https://huggingface.co/{'' if self.repo_type == 'model' else self.repo_type + 's/'}{self.repo_id}"
        return f"{repo}/resolve/{self.revision}/{self.filename}" if self.filename else f"{repo}/tree/{self.revision}"

    @property
    def file_key(self) -> str:
        """The name a one-file entry's file has in `sha256`, the lock and the manual location."""
        return self.filename.rsplit("/", 1)[-1]

    def pin_note(self) -> str:
        """How this entry's content is pinned, for the tables (docs/weights.md lists the full hashes)."""
        if not self.sha256:
            return "unpinned: recorded on first use"
        if not self.is_snapshot:
            return f"sha256 {self.sha256[self.file_key][:16]}"
        if set(self.sha256) == set(self.patterns):
            return f"sha256 of all {len(self.sha256)} files"
        return f"sha256 of {len(self.sha256)} file(s), others recorded on first use"


# Diffusers pipeline components the avgen loaders read (weights as safetensors only: no pickle).
DIFFUSERS_PIPELINE = (
    "model_index.json",
    "scheduler/*.json",
    "tokenizer/*",
    "text_encoder/*.json",
    "text_encoder/*.safetensors",
    "unet/*.json",
    "unet/*.safetensors",
    "vae/*.json",
    "vae/*.safetensors",
)

REGISTRY: dict[str, Weight] = {
    w.name: w
    for w in [
        Weight(
            "sd-vae-ft-mse",
            repo_id="stabilityai/sd-vae-ft-mse",
            revision="31f26fdeee1355a5c34592e401dd41e45d25a493",
            patterns=("config.json", "diffusion_pytorch_model.safetensors"),
            # sizes 547 B and 334,643,276 B; the weights' hash is the hub's LFS SHA-256 of this file
            sha256={
                "config.json": "92d3dfb746fca211a2c9e019e285f8597412211728dce3c5bcf4eda0f2d62e7e",
                "diffusion_pytorch_model.safetensors": "a1d993488569e928462932c8c38a0760b874d166399b14414135bd9c42df5815",  # noqa: E501
            },
            licence="MIT (model card)",
            used_by="vae_path of the cmmd / mmdisco presets (SD-VAE video latents); stores record it for decoding",
        ),
        Weight(
            "audioldm-m-full",
            repo_id="cvssp/audioldm-m-full",
            revision="af776f973dbb56a13f3713267131fc6dd972b405",
            patterns=(
                "model_index.json",
                "scheduler/*.json",
                "tokenizer/*",
                "text_encoder/*.json",
                "text_encoder/*.safetensors",
                "unet/*.json",
                "unet/*.safetensors",
                "vae/*.json",
                "vae/*.safetensors",
                "vocoder/*.json",
                "vocoder/*.safetensors",
            ),
            licence="CC-BY-NC-SA-4.0 (model card): non-commercial",
            used_by="method.bases.text.audio (MMDisCo out of domain, as in its official code); audioldm_path "
            "(its vae/ encodes, its vocoder/ decodes)",
        ),
        Weight(
            "realistic-vision-v5.1",
            repo_id="SG161222/Realistic_Vision_V5.1_noVAE",
            revision="1e9f017a7b1eaefb63a1900ea6c5953d2739fd21",
            patterns=DIFFUSERS_PIPELINE,
            licence="CreativeML Open RAIL-M (model card)",
            used_by="method.bases.text.video with animatediff-motion-adapter-v1-5-2 (MMDisCo's AnimateDiff base); "
            "vae_path=realistic-vision-v5.1/vae for the mmdisco_ood preset",
        ),
        Weight(
            "animatediff-motion-adapter-v1-5-2",
            repo_id="guoyww/animatediff-motion-adapter-v1-5-2",
            revision="6167b88ffe39b4441fdf2113e77b99a6f56b7906",
            patterns=("config.json", "diffusion_pytorch_model.safetensors"),
            # hub LFS SHA-256 (file unchanged since 640522d; 6167b88 only added the README)
            sha256={
                "diffusion_pytorch_model.safetensors": "d95c417ddd4ffe1f7d4df43b51ef1c2c3c4fd7c3fd5ae53c75ef5d798a2213a3"  # noqa: E501
            },
            licence="none stated on the model card; AnimateDiff's code is Apache-2.0",
            used_by="method.bases.text.motion_adapter",
        ),
        Weight(
            "clap-htsat-unfused",
            repo_id="laion/clap-htsat-unfused",
            revision="8fa0f1c6d0433df6e97c127f64b2a1d6c0dcda8a",
            patterns=(
                "config.json",
                "merges.txt",
                "preprocessor_config.json",
                "pytorch_model.bin",
                "special_tokens_map.json",
                "tokenizer.json",
                "tokenizer_config.json",
                "vocab.json",
            ),
            # per-file SHA-256 of this tree as published by projects that pin it (pytorch_model.bin: 614,525,833 B)
            sha256={
                "config.json": "9efb9557bc804f2ca6e394486af2e45dfed0b18554909735a99c6220b84e4288",
                "merges.txt": "fe36cab26d4f4421ed725e10a2e9ddb7f799449c603a96e7f29b5a3c82a95862",
                "preprocessor_config.json": "9739f58296aa6f9ac18008fd0150fb2649bc554985fbde86d0a4041c882ac753",
                "pytorch_model.bin": "1cd3c601bc4afe0fa87be3de4c13dd2cfadd249fac1e29acf74a9b296c3219bb",
                "special_tokens_map.json": "06e405a36dfe4b9604f484f6a1e619af1a7f7d09e34a8555eb0b77b66318067f",
                "tokenizer.json": "77ef92283d67f0d97e1454909a964afcbfa2019f0fb9f18f8e88d5c25c3ba729",
                "tokenizer_config.json": "377f91458f7729a4574a84c77bdce67dbc3c58c1a345a29bbf8c4eb1307948a3",
                "vocab.json": "ed19656ea1707df69134c4af35c8ceda2cc9860bf2c3495026153a133670ab5e",
            },
            licence="Apache-2.0 (model card)",
            used_by="evaluate.fad.weights (FAD, per-sample FAD)",
        ),
        Weight(
            "larger-clap-music-and-speech",
            # LAION's transformers port of the HTSAT-base CLAP trained on music, speech, AudioSet and LAION-Audio-630K
            # (the music_speech_audioset_epoch_15_esc_89.98.pt that av-benchmark loads). The revision is the one
            # mteb's model registry and other projects pin; a weights SHA-256 (d4e5cf63...) is cited downstream
            # without naming its file, so nothing is pinned: recorded on first use, and checked against the hub's
            # LFS hashes for this commit
            repo_id="laion/larger_clap_music_and_speech",
            revision="195c3a3e68faebb3e2088b9a79e79b43ddbda76b",
            patterns=(
                "config.json",
                "merges.txt",
                "preprocessor_config.json",
                "pytorch_model.bin",
                "special_tokens_map.json",
                "tokenizer.json",
                "tokenizer_config.json",
                "vocab.json",
            ),
            licence="Apache-2.0 (as the projects pinning this revision state it)",
            used_by="evaluate.clap.weights (clap_score as av-benchmark's LAION-CLAP-Score)",
        ),
        Weight(
            "i3d-torchscript",
            url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
            filename="i3d_torchscript.pt",
            # StyleGAN-V's export, 51,235,320 B; the hash every FVD codebase that pins it checks
            sha256={"i3d_torchscript.pt": "bec6519f66ea534e953026b4ae2c65553c17bf105611c746d904657e5860a5e2"},
            licence="Kinetics-400 I3D weights by DeepMind (Apache-2.0), TorchScript export by StyleGAN-V",
            used_by="evaluate.fvd.weights (FVD, KVD)",
        ),
        Weight(
            "i3d-videogpt",
            repo_id="LanguageBind/Open-Sora-Plan-v1.0.0",
            repo_type="space",
            revision="810fa8c4bdb3a4c8eec9bd57375c29bde6fb46de",
            filename="opensora/eval/fvd/videogpt/i3d_pretrained_400.pt",
            licence="Kinetics-400 I3D weights by DeepMind (Apache-2.0), PyTorch port by VideoGPT (MIT)",
            used_by="evaluate.fvd.weights as a state dict (the VideoGPT port's layout, loaded into avgen.models.i3d)",
        ),
        Weight(
            "panns-cnn14-16k",
            # the URL av-benchmark (av_bench/panns/models.py) downloads; Zenodo publishes an MD5, no SHA-256
            url="https://zenodo.org/record/3987831/files/Cnn14_16k_mAP%3D0.438.pth",
            filename="Cnn14_16k_mAP=0.438.pth",
            licence="the Zenodo record's (PANNs, Kong et al.); audioset_tagging_cnn code: MIT",
            used_by="evaluate.panns.weights (fd_panns, is_panns, v2a_kl_panns as av-benchmark, 16 kHz)",
        ),
        Weight(
            "panns-cnn14-32k",
            # the URL panns_inference downloads (record 3987831; av-benchmark fetches the same file from 3576403);
            # Zenodo's published checksum is the MD5 541141fa2ee191a88f24a3219fff024e, no SHA-256
            url="https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth?download=1",
            filename="Cnn14_mAP=0.431.pth",
            licence="the Zenodo record's (PANNs, Kong et al.); audioset_tagging_cnn code: MIT",
            used_by="evaluate.panns.weights (the paper's 32 kHz Cnn14: PANNs metrics on its front end)",
        ),
        Weight(
            "passt-s-ap476-swa",
            # the URL hear21passt (passt_hear21 models/passt.py, arch passt_s_swa_p16_128_ap476) downloads for
            # av-benchmark's get_basic_model, with its hash check off; neither PaSST repository states a SHA-256
            url="https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt",
            filename="passt-s-f128-p16-s10-ap.476-swa.pt",
            licence="Apache-2.0 (kkoutini/PaSST, whose release it is; no separate licence stated for the weights)",
            used_by="evaluate.passt.weights (fd_passt, is_passt, v2a_kl_passt as av-benchmark, 32 kHz)",
        ),
        Weight(
            "audioclip-full-training",
            # the release URL AudioCLIP's README gives and MM-Diffusion's / JavisBench's get_embedding.py download
            # (unchecked); no SHA-256 is published for the release asset (the repository's Git LFS copy under
            # assets/ has LFS oid 2441d35b353352c8b1bbfb8f7c687f46314c3d2909e940eaf763b8c17f632c44, 537,302,068 B,
            # not stated to be the same file)
            url="https://github.com/AndreyGuzhov/AudioCLIP/releases/download/v0.1/AudioCLIP-Full-Training.pt",
            filename="AudioCLIP-Full-Training.pt",
            licence="MIT (AndreyGuzhov/AudioCLIP, whose release it is; its image and text towers start from OpenAI's "
            "CLIP RN50, MIT); no separate licence stated for the weights",
            used_by="evaluate.audioclip.weights (fad_audioclip as MM-Diffusion and JavisBench; only its audio.* "
            "entries are loaded)",
        ),
        Weight(
            "vggish",
            # torchvggish's hubconf URL; the name carries only a SHA-256 prefix (10086976), no full hash is published
            url="https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth",
            filename="vggish-10086976.pth",
            licence="Apache-2.0 (VGGish, tensorflow/models; torchvggish port)",
            used_by="evaluate.vggish.weights (fd_vggish as av-benchmark: no PCA postprocessing)",
        ),
        Weight(
            "synchformer-audioset",
            url="https://github.com/hkchengrex/MMAudio/releases/download/v0.1/synchformer_state_dict.pth",
            filename="synchformer_state_dict.pth",
            # the file av-benchmark's README and MMAudio's download list point to (the 24-01-04T16-39-21
            # AudioSet model, 907 MB); MMAudio publishes its MD5 only (5b2f5594b0730f70e41e549b7c94390c)
            licence="MIT (the Synchformer repository; its AudioSet model re-published by MMAudio)",
            used_by="evaluate.desync.weights (DeSync; loaded into avgen.models.synchformer.Synchformer)",
        ),
        Weight(
            "imagebind-huge",
            url="https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth",
            filename="imagebind_huge.pth",
            licence="CC-BY-NC-4.0 (ImageBind repository): non-commercial",
            used_by="the export of evaluate.imagebind.{video,audio,text} TorchScript encoders (docs/metrics.md); "
            "not loaded directly",
        ),
    ]
}
