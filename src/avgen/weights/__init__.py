"""One resolver for every pretrained artefact (docs/weights.md).

`resolve(name_or_path)` is what every loader calls on a configured weights value: a local path comes back
untouched; a registry name (`registry.REGISTRY`: hub repo + pinned commit, or a pinned URL; SHA-256; licence;
what uses it) is found locally or downloaded once, verified by hash, and its local path returned.
`avgen weights` / `make weights [WHICH=...]` fetches ahead of time (offline clusters) and prints the table.
"""

from avgen.weights.registry import REGISTRY, Weight
from avgen.weights.resolve import WeightsMissing, fetch, fingerprint, locate, resolve
from avgen.weights.verify import HashMismatch, WeightsIncomplete, record_of, weights_dir

__all__ = [
    "REGISTRY",
    "Weight",
    "WeightsMissing",
    "WeightsIncomplete",
    "HashMismatch",
    "fetch",
    "fingerprint",
    "locate",
    "resolve",
    "record_of",
    "weights_dir",
]
