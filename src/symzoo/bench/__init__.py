"""``symzoo bench NAME``: speeds measured side by side in one run, printed as one JSON object (tables: also as text).

- ``zoo-train``: vmapped population training against a sequential torch.nn loop and a batched-matmul bound;
- ``encode``: encoder + decoder throughput, and seconds per network at two network sizes;
- ``merge``: batched interpolation against the best per-network loop, and its memory per pass at two pair counts;
- ``canonicalize``: the autoencoder (encode + decode, and its training amortised over a zoo) against Git Re-Basin
  per pair, across network widths: the crossover width and the growth exponents; and all pairs of a zoo, pairwise
  Re-Basin against per-network alignment (the zoo size from which the per-network path wins);
- ``convert``: the Small CNN Zoo conversion of a synthetic archive of a given size: time and peak memory.

Options (``run``'s keyword arguments) that a benchmark does not take are an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def run(name: str, device: torch.device, quick: bool = False, **options: object) -> dict:
    """Run benchmark ``name`` on ``device``; ``quick`` shrinks the problem (a smoke run, not for figures);
    ``options`` set the sizes of benchmarks that take them (``runs`` for convert, ...), over ``quick``'s."""
    if options and name not in OPTIONS:
        raise ValueError(f"benchmark {name!r} takes no options, got {sorted(options)}")
    unknown = set(options) - OPTIONS.get(name, set())
    if unknown:
        raise ValueError(f"benchmark {name!r} takes {sorted(OPTIONS[name])}, not {sorted(unknown)}")
    if name == "zoo-train":
        from symzoo.bench.zoo_train import bench_zoo_train

        kwargs = {"ms": (8, 16), "samples": 2_000, "repeats": 1, "sequential_steps": 20} if quick else {}
        return {"benchmark": name, "device": str(device), "results": bench_zoo_train(device=device, **kwargs)}
    if name == "encode":
        from symzoo.bench.encode import bench_encode

        return {"benchmark": name, **bench_encode(device=device, **({"budget_s": 0.2} if quick else {}))}
    if name == "merge":
        from symzoo.bench.merge import bench_merge

        small = {"pairs": 4, "images": 500, "memory_pairs": (2, 4), "memory_images": 64, "budget": 2**20}
        return {"benchmark": name, **bench_merge(device, **{**(small if quick else {}), **options})}
    if name == "canonicalize":
        from symzoo.bench.canonicalize import bench_canonicalize

        small = {"widths": (8, 16), "repeats": 1}
        return {"benchmark": name, **bench_canonicalize(device, **{**(small if quick else {}), **options})}
    if name == "convert":
        from symzoo.bench.convert import bench_convert

        return {"benchmark": name, "device": "CPU", **bench_convert(**{**({"runs": 20} if quick else {}), **options})}
    raise ValueError(f"unknown benchmark {name!r}, expected one of {BENCHMARKS}")


BENCHMARKS = ("zoo-train", "encode", "merge", "canonicalize", "convert")
OPTIONS = {"convert": {"runs", "workdir"}, "merge": {"repeats"}, "canonicalize": {"widths", "repeats", "zoo_size"}}
"""The options each benchmark takes (``symzoo bench --runs``, ``--widths``, ...)."""


def tables(result: dict) -> str:
    """Every list of rows (dicts) in a benchmark's result as a plain-text table under its key; floats in 4
    significant digits."""

    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    out = []
    for key, rows in result.items():
        if not (isinstance(rows, list) and rows and all(isinstance(row, dict) for row in rows)):
            continue
        columns = list(rows[0])
        cells = [columns, *([cell(row.get(c)) for c in columns] for row in rows)]
        sizes = [max(len(line[i]) for line in cells) for i in range(len(columns))]
        out.append(f"{key}:")
        out += ["  ".join(text.rjust(size) for text, size in zip(line, sizes)) for line in cells]
    return "\n".join(out)


def arguments(p: argparse.ArgumentParser) -> None:
    """``symzoo bench``'s arguments (the command-line side of :func:`run`)."""
    from symzoo.stages.common import add_device

    p.add_argument("what", choices=BENCHMARKS, help="which benchmark")
    p.add_argument("--quick", action="store_true", help="smaller problem sizes (a smoke run, not for figures)")
    p.add_argument("--runs", type=int, help="convert: runs of the synthetic archive (x 9 rows; 30,000: full size)")
    p.add_argument("--workdir", type=Path, help="convert: where its temporary archive goes (about 3x the weights)")
    p.add_argument("--repeats", type=int, help="merge, canonicalize: timed calls of each side, taken in turns")
    p.add_argument("--widths", type=_ints, help="canonicalize: MLP hidden widths, comma-separated (16,64,256,1024)")
    p.add_argument("--zoo-size", type=int, help="canonicalize: networks the encoder's training is amortised over")
    add_device(p)


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def main(args: argparse.Namespace) -> None:
    from symzoo.device import resolve

    names = {name for names in OPTIONS.values() for name in names}
    options = {name: getattr(args, name) for name in sorted(names) if getattr(args, name) is not None}
    result = run(args.what, resolve(args.device), quick=args.quick, **options)
    table = tables(result)
    if table:  # for reading; the JSON object on stdout holds the same rows
        print(table, file=sys.stderr)
    print(json.dumps(result, indent=2, default=str))
