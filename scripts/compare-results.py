#!/usr/bin/env python3
"""Compare two results/ folders byte for byte: does a change leave every result as it was?

    python scripts/compare-results.py OLD/results results

Compares the zoos' parameters, every merge curve, fidelity and generalization table, the report's tables
(not the timings-free logs or downloads) and the encoders' weights (model.pt holds more than the weights: the
weights are compared as tensors). Prints one line per file and exits 1 if any differs or is missing.
"""

from __future__ import annotations

import filecmp
import sys
from pathlib import Path

PATTERNS = (
    "zoo/*/params.npy",
    "zoo/*/models.parquet",
    "merge/*/*/curves.parquet",
    "merge/*/orbit.parquet",
    "fidelity/*/*.parquet",
    "predict/*/*/*/predictions.parquet",
    "tables/*.parquet",
)


def main(old: Path, new: Path) -> int:
    bad = 0
    for pattern in PATTERNS:
        for path in sorted(new.glob(pattern)):
            rel = path.relative_to(new)
            same = (old / rel).is_file() and filecmp.cmp(old / rel, path, shallow=False)
            bad += not same
            print(("same " if same else "DIFF ") + str(rel))
    import torch

    for path in sorted(new.glob("encoders/*/*/model.pt")):
        rel = path.relative_to(new)
        if not (old / rel).is_file():
            print(f"MISSING {rel}")
            bad += 1
            continue
        a, b = (torch.load(p, map_location="cpu", weights_only=True)["state_dict"] for p in (old / rel, path))
        same = a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
        bad += not same
        print(("same " if same else "DIFF ") + f"{rel} (weights)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
