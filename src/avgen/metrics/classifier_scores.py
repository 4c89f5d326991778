"""Scores of an audio classifier's class outputs (docs/metrics.md): KL and inception score on PANNs Cnn14's
527 AudioSet logits, as av-benchmark (hkchengrex/av-benchmark, the evaluation of MMAudio) defines them.

Both read the logits before the sigmoid and turn them into a distribution over the 527 classes with a softmax
(av-benchmark's reported `KL-PANNS-softmax` and `ISC-PANNS`); natural logarithms; no epsilon.
"""

from __future__ import annotations

import numpy as np
import torch


# KL(p_ref || p_gen) per pair, p = softmax(logits): sum_c p_ref,c (log p_ref,c - log p_gen,c). av-benchmark
# metrics/kl.py `kl_softmax`: F.kl_div(log_softmax(generated), log_softmax(reference), log_target=True), the
# reference as the target, i.e. KL(reference || generated) (the AudioGen formulation).
def kl_per_pair(generated_logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """(N, C) paired logits -> (N,) KL divergences, in float64."""
    log_ref, log_gen = (x.double().log_softmax(1) for x in (reference_logits, generated_logits))
    return (log_ref.exp() * (log_ref - log_gen)).sum(1)


# The reported KL: reduction="sum" over pairs and classes divided by the number of pairs = the mean over pairs.
def kl_mean(generated_logits: torch.Tensor, reference_logits: torch.Tensor) -> float:
    return float(kl_per_pair(generated_logits, reference_logits).mean())


# The split order: rows shuffled by np.random.RandomState(seed).permutation(N) (av-benchmark metrics/isc.py,
# from audioldm_eval, with rng_seed=2020), split i = rows [i N // splits, (i + 1) N // splits).
def split_rows(n: int, splits: int, seed: int) -> list[np.ndarray]:
    order = np.random.RandomState(seed).permutation(n)
    return [order[i * n // splits : (i + 1) * n // splits] for i in range(splits)]


# Inception score of one split (Salimans et al. 2016): exp(mean_x KL(p(y|x) || p(y))), p(y) the split's mean of
# p(y|x) = softmax(logits) (av-benchmark metrics/isc.py, in float64).
def inception_score_of(logits: torch.Tensor) -> float:
    log_p = logits.double().log_softmax(1)
    p = log_p.exp()
    marginal = p.mean(0, keepdim=True)
    return float((p * (log_p - marginal.log())).sum(1).mean().exp())


def inception_scores(logits: torch.Tensor, splits: int = 10, seed: int = 2020) -> np.ndarray:
    """(N, C) logits -> the (splits,) per-split scores whose mean and population std av-benchmark reports."""
    if len(logits) < splits:
        raise ValueError(f"the inception score over {splits} splits needs at least {splits} clips, got {len(logits)}")
    return np.array(
        [inception_score_of(logits[torch.from_numpy(rows)]) for rows in split_rows(len(logits), splits, seed)]
    )
