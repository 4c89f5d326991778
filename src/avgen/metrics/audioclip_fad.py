"""FAD on AudioCLIP as MM-Diffusion and JavisBench print it: their scale and their estimator of the distance.

Both compute `frechet_distance(fake, real) * 10000` on AudioCLIP's raw 1024-d audio embeddings (MM-Diffusion
`mm_diffusion/evaluator.py`, JavisBench `eval/javisbench/src/metrics.py`, with `evaluations/fvd/fvd.py`'s
`frechet_distance`): ||mu_f - mu_r||^2 + tr(C_f + C_r) - 2 tr(S(S(C_f) C_r S(C_f))), unbiased covariances, where
S(M) is the SVD square root U diag(s') V^T with s' = sqrt(s) for singular values s >= 1e-10 and s' = s below:
the small ones are left unrooted, so where the embeddings are small (eigenvalue products under 1e-10) that
estimator exceeds the Fréchet distance. avgen's `fad_audioclip` is the Fréchet distance itself
(`metrics/frechet.py`); `reference_estimator` gives the references' number on the same features, for comparison
with published values.
"""

from __future__ import annotations

import torch

REPORTED_SCALE = 10000  # MM-Diffusion and JavisBench print the distance times 1e4 as "FAD"
SQRT_THRESHOLD = 1e-10  # fvd.py `_symmetric_matrix_square_root(mat, eps=1e-10)`


def thresholded_sqrt(mat: torch.Tensor, threshold: float = SQRT_THRESHOLD) -> torch.Tensor:
    """U diag(s') V^T from the SVD of `mat`: s' = sqrt(s) where s >= threshold, s where below."""
    u, s, vh = torch.linalg.svd(mat)
    return (u * torch.where(s < threshold, s, s.sqrt())) @ vh


def reference_estimator(fake: torch.Tensor, real: torch.Tensor) -> float:
    """The references' "FAD" of (N, d) generated and (M, d) reference embeddings, in float64, times 1e4."""
    f, r = fake.double(), real.double()
    cf, cr = torch.cov(f.T), torch.cov(r.T)
    root = thresholded_sqrt(cf)
    cross = torch.trace(thresholded_sqrt(root @ cr @ root))
    fd = (f.mean(0) - r.mean(0)).square().sum() + torch.trace(cf + cr) - 2 * cross
    return float(fd) * REPORTED_SCALE
