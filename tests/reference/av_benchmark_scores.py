"""A test-only transcription of av-benchmark's KL and inception score (hkchengrex/av-benchmark
`av_bench/metrics/kl.py` `compute_kl` and `av_bench/metrics/isc.py` `compute_isc`, the latter from
audioldm_eval), kept as close to them as runs: what `avgen.metrics.classifier_scores` is tested against.
Changes: only the softmax KL is kept (the one av-benchmark reports for PANNs), and the commented-out variants
are dropped."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def compute_kl(paired_logits, gt_logits):
    # KL is computed as KL(gt || generated)
    for paired_samples in paired_logits:
        kl_softmax = F.kl_div(
            F.log_softmax(paired_samples, dim=1),
            F.log_softmax(gt_logits, dim=1),
            reduction="sum",
            log_target=True,
        ) / len(paired_samples)
    return {"kl_softmax": float(kl_softmax)}


def compute_isc(featuresdict, feat_layer_name, rng_seed, samples_shuffle, splits):
    if feat_layer_name is not None:
        features = featuresdict[feat_layer_name]
    else:
        features = featuresdict

    assert torch.is_tensor(features) and features.dim() == 2
    N, C = features.shape
    if samples_shuffle:
        rng = np.random.RandomState(rng_seed)
        features = features[rng.permutation(N), :]
    features = features.double()

    p = features.softmax(dim=1)
    log_p = features.log_softmax(dim=1)

    scores = []
    for i in range(splits):
        p_chunk = p[(i * N // splits) : ((i + 1) * N // splits), :]
        log_p_chunk = log_p[(i * N // splits) : ((i + 1) * N // splits), :]
        q_chunk = p_chunk.mean(dim=0, keepdim=True)
        kl = p_chunk * (log_p_chunk - q_chunk.log())
        kl = kl.sum(dim=1).mean().exp().item()
        scores.append(kl)

    return {
        "inception_score_mean": float(np.mean(scores)),
        "inception_score_std": float(np.std(scores)),
    }
