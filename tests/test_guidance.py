"""Reconstruction guidance (CMMD Eq. 3) with a denoiser that is exact for a Gaussian pair: the strength of a
given lambda must not depend on the two modalities' sizes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avgen.diffusion.denoiser import Denoiser
from avgen.diffusion.schedule import NoiseSchedule
from avgen.sampling.guidance import ReconstructionGuidance
from avgen.sampling.samplers import generate


class GaussianDenoiser(Denoiser):
    """x0_hat = E[x0 | x_t] for a zero-mean joint Gaussian with covariance `cov` over (audio, video) flattened."""

    def __init__(self, cov: torch.Tensor, n_audio: int):
        super().__init__()
        self.cov, self.n = cov, n_audio
        schedule = NoiseSchedule()
        self.schedules = nn.ModuleDict({"audio": schedule, "video": schedule})

    def forward(self, x, t):
        b = x["audio"].shape[0]
        flat = torch.cat([x["audio"].reshape(b, -1), x["video"].reshape(b, -1)], 1).double()
        abar = self.schedules["audio"].alphas_cumprod[t[0].long()].double()  # one t for the batch
        eye = torch.eye(len(self.cov), dtype=torch.float64)
        gain = abar.sqrt() * self.cov @ torch.linalg.inv(abar * self.cov + (1 - abar) * eye)  # Gaussian posterior mean
        out = (flat @ gain.T).to(x["audio"].dtype)
        return {
            "audio": out[:, : self.n].reshape(x["audio"].shape),
            "video": out[:, self.n :].reshape(x["video"].shape),
        }


def gaussian_pair(n: int, k: int, information: float = 99.0) -> torch.Tensor:
    """Covariance of audio a (n values, unit variance) and video v (k values per audio value, v = rho a + noise),
    with rho chosen so that each audio value's posterior variance given its k video values is 1 / (1 + information)
    whatever k: an exact conditional sampler has the same error at every size ratio."""
    rho = math.sqrt(information / (k + information))
    cov = torch.eye(n + n * k, dtype=torch.float64)
    for i in range(n):
        block = list(range(n + i * k, n + (i + 1) * k))
        for j in block:
            cov[i, j] = cov[j, i] = rho
            for j2 in block:
                if j2 != j:
                    cov[j, j2] = rho**2
    return cov


def v2a_error(k: int, scale: float, norm: str, n: int = 8, num: int = 64) -> float:
    cov = gaussian_pair(n, k)
    g = torch.Generator().manual_seed(0)
    x = (torch.linalg.cholesky(cov) @ torch.randn(len(cov), num, generator=g, dtype=torch.float64)).T.float()
    audio, video = x[:, :n].reshape(num, 1, n), x[:, n:].reshape(num, 1, n * k)
    out = generate(
        GaussianDenoiser(cov, n),
        {"audio": (num, 1, n), "video": (num, 1, n * k)},
        "cpu",
        50,
        known={"video": video},
        guidance_scale=scale,
        guidance_norm=norm,
        seeds=list(range(num)),
        scheduler_kwargs={"clip_sample": False},
        step_kwargs={"eta": 0.0},
    )
    torch.testing.assert_close(out["video"], video)  # the condition is returned as given
    return float((out["audio"] - audio).pow(2).mean())


def test_balanced_guidance_means_the_same_at_any_size_ratio():
    # measured (n=8, 64 pairs): sum 0.028 (1:1) vs 0.111 (24:1, over-driven); balanced 0.028 vs 0.025;
    # replacement (lambda 0) 0.210 and 0.030; an exact posterior sampler ~0.02 at both
    equal = v2a_error(1, 5.0, "balanced")
    assert v2a_error(1, 5.0, "sum") == pytest.approx(equal, rel=1e-5)  # equal sizes: Eq. 3 unchanged
    assert v2a_error(24, 5.0, "sum") > 2.5 * equal  # the sum over-drives at 24:1 ...
    assert abs(v2a_error(24, 5.0, "balanced") - equal) < 0.25 * equal  # ... the balanced error does not
    assert equal < 0.05


def test_unknown_guidance_norm_is_refused():
    den = GaussianDenoiser(gaussian_pair(2, 1), 2)
    with pytest.raises(ValueError, match="guidance norm"):
        ReconstructionGuidance(den, {"video": torch.zeros(1, 1, 2)}, norm="mean")


@pytest.mark.slow
def test_guidance_sweep_chooses_on_the_validation_split_only(synthetic_store, tmp_path, capsys):
    import json

    from avgen.cli.main import main

    common = [
        "experiment=cmmd_synthetic",
        f"data.store={synthetic_store}",
        f"output_dir={tmp_path / 'run'}",
        "model.base_channels=8",
        "model.head_dim=8",
        "data.batch_size=4",
        "sampler.steps=2",
        "threads=1",
    ]
    assert (
        main(
            [
                "train",
                *common,
                "trainer.max_steps=2",
                "trainer.enable_progress_bar=false",
                "trainer.val_check_interval=1000",
                "evaluate.num_samples=0",
                "evaluate.num_video_to_audio=0",
                "evaluate.num_audio_to_video=0",
            ]
        )
        == 0
    )
    assert main(["guidance-sweep", *common, "lambdas=[0,5]", "num=4"]) == 0
    summary = json.loads((tmp_path / "run" / "guidance_sweep" / "summary.json").read_text())
    assert summary["split"] == "val" and [r["lambda"] for r in summary["rows"]] == [0.0, 5.0]
    assert summary["chosen_lambda"] in (0.0, 5.0)
    scored = json.loads((tmp_path / "run" / "guidance_sweep" / "lambda_5" / "metrics.json").read_text())
    assert scored["guidance_scale"] == 5.0 and "a2v_lag_contrast" in scored and "temporal_f1" not in scored
    assert "val split" in scored["metrics_reference"]
    assert not (tmp_path / "run" / "eval").exists()  # the run's test scores are never replaced by a sweep
    assert main(["guidance-sweep", *common, "lambdas=[0]", "num=4", "data.val_split=test"]) == 2
    assert "never on test" in capsys.readouterr().err
