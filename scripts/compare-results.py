#!/usr/bin/env python3
"""Compare two results/ folders byte for byte: does a change leave every result as it was?

    python scripts/compare-results.py OLD/results results
    python scripts/compare-results.py --renamed OLD/results results

Compares the zoos' parameters, every merge curve, fidelity and generalization table, the report's tables
(not the timings-free logs or downloads) and the encoders' weights (model.pt holds more than the weights: the
weights are compared as tensors). Prints one line per file and exits 1 if any differs or is missing.

``--renamed`` compares OLD from before the task-neutral column names (``accuracy`` -> ``score``, ``kl_a`` ->
``dist_a``, ...; the whole mapping is :data:`RENAMED`, printed by ``--help``): a table of :data:`RENAMED_TABLES`
whose OLD file has old names is read with polars, its columns renamed and put in the new file's order, and compared
with ``DataFrame.equals`` (exact values, nulls equal); every other file is still compared byte for byte.
"""

from __future__ import annotations

import argparse
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

RENAMED = {
    # curves (merge/*/*/curves.parquet, merge/*/orbit.parquet, tables/curves.parquet, tables/orbit_curves.parquet)
    "accuracy": "score",
    "kl_a": "dist_a",
    "kl_b": "dist_b",
    "orig_acc_a": "orig_score_a",
    "orig_acc_b": "orig_score_b",
    # per-pair barriers (tables/barriers.parquet, tables/orbit_barriers.parquet)
    "acc_barrier": "score_barrier",
    "acc_barrier_mid": "score_barrier_mid",
    "endpoint_kl": "endpoint_dist",
    "endpoint_acc_gap": "endpoint_score_gap",
    "mid_kl": "mid_dist",
    "accuracy_a": "score_a",
    "accuracy_b": "score_b",
    # aggregated (tables/barriers_summary.parquet, tables/orbit_summary.parquet, tables/inr_orbit.parquet)
    "acc_barrier_mean": "score_barrier_mean",
    "acc_barrier_std": "score_barrier_std",
    "acc_barrier_ci95": "score_barrier_ci95",
    "acc_barrier_mid_mean": "score_barrier_mid_mean",
    "acc_barrier_mid_std": "score_barrier_mid_std",
    "acc_barrier_mid_ci95": "score_barrier_mid_ci95",
    "endpoint_kl_mean": "endpoint_dist_mean",
    "endpoint_kl_std": "endpoint_dist_std",
    "endpoint_kl_ci95": "endpoint_dist_ci95",
    "endpoint_acc_gap_mean": "endpoint_score_gap_mean",
    "endpoint_acc_gap_std": "endpoint_score_gap_std",
    "endpoint_acc_gap_ci95": "endpoint_score_gap_ci95",
    "mid_kl_mean": "mid_dist_mean",
    "mid_kl_std": "mid_dist_std",
    "mid_kl_ci95": "mid_dist_ci95",
    "medoid_mid_kl_mean": "medoid_mid_dist_mean",
}
"""Old column name -> new (the task-neutral names: ``score`` is a test accuracy or a PSNR in dB, ``dist`` a KL or a
render MSE, by the curves' ``task``). Only in :data:`RENAMED_TABLES`: elsewhere (``predictions.parquet``'s
``accuracy``, the fidelity tables' ``kl`` and ``acc_gap``) the names did not change."""

RENAMED_TABLES = (
    "merge/*/*/curves.parquet",
    "merge/*/orbit.parquet",
    "tables/curves.parquet",
    "tables/barriers.parquet",
    "tables/barriers_summary.parquet",
    "tables/orbit_curves.parquet",
    "tables/orbit_barriers.parquet",
    "tables/orbit_summary.parquet",
    "tables/inr_orbit.parquet",
)
"""The tables whose columns :data:`RENAMED` renames (relative to results/)."""


def compare_renamed(old: Path, new: Path) -> tuple[bool, str]:
    """Whether the table ``old`` (old names) equals ``new`` once renamed, and how it was compared."""
    import polars as pl

    before, after = pl.read_parquet(old), pl.read_parquet(new)
    if not set(before.columns) & set(RENAMED):
        return filecmp.cmp(old, new, shallow=False), ""
    renamed = before.rename({c: RENAMED[c] for c in before.columns if c in RENAMED})
    if sorted(renamed.columns) != sorted(after.columns):
        extra, missing = set(renamed.columns) - set(after.columns), set(after.columns) - set(renamed.columns)
        return False, f" (renamed columns; only in old: {sorted(extra)}, only in new: {sorted(missing)})"
    return renamed.select(after.columns).equals(after, null_equal=True), " (renamed columns)"


def main(old: Path, new: Path, renamed: bool = False) -> int:
    bad = 0
    tables = {p for pattern in RENAMED_TABLES for p in new.glob(pattern)} if renamed else set()
    for pattern in PATTERNS:
        for path in sorted(new.glob(pattern)):
            rel = path.relative_to(new)
            how = ""
            if not (old / rel).is_file():
                same = False
            elif path in tables:
                same, how = compare_renamed(old / rel, path)
            else:
                same = filecmp.cmp(old / rel, path, shallow=False)
            bad += not same
            print(("same " if same else "DIFF ") + str(rel) + how)
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


def parser() -> argparse.ArgumentParser:
    tables = "\n".join(f"  {pattern}" for pattern in RENAMED_TABLES)
    mapping = "\n".join(f"  {old:<24} -> {new}" for old, new in RENAMED.items())
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"--renamed renames the columns of these tables of OLD:\n{tables}\nold name -> new name:\n{mapping}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("old", type=Path, help="the results/ folder of the old commit")
    p.add_argument("new", type=Path, help="the results/ folder of the new commit")
    p.add_argument(
        "--renamed",
        action="store_true",
        help="OLD has the old column names: compare its renamed tables as frames (exact values), the rest as bytes",
    )
    return p


if __name__ == "__main__":
    args = parser().parse_args()
    sys.exit(main(args.old, args.new, args.renamed))
