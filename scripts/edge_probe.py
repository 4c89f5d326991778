"""Can a negative be recognised from one modality alone? (CMMD fidelity: negatives without edge cues.)

Prints the held-out accuracy of a logistic probe on one modality's window alone, per time shift the negative
sampler draws (`avgen.evaluation.edge_probe`). 0.5 is chance; the store is free of edge cues when every
figure is <= 0.6. Usage:

    python scripts/edge_probe.py [store=data/synthetic/store] [shift_frames=2,4] [modalities=audio,video] [clips=2048]
"""

from __future__ import annotations

import json
import sys

from avgen.data.store import Store
from avgen.evaluation.edge_probe import edge_probe


def main(argv: list[str]) -> dict:
    args = dict(a.split("=", 1) for a in argv)
    lo, hi = (int(s) for s in args.get("shift_frames", "2,4").split(","))
    out = edge_probe(
        Store(args.get("store", "data/synthetic/store")),
        (lo, hi),
        tuple(args.get("modalities", "audio,video").split(",")),
        int(args.get("clips", 2048)),
    )
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
