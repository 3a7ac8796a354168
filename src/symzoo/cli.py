"""The ``symzoo`` command: one sub-command per pipeline stage, each with explicit inputs and outputs.

Every Snakemake rule calls one of these; each also runs on its own (``symzoo <stage> --help``).
Stage options are one section of the config, passed as JSON (``--options``) and validated against the
same schema the Snakefile uses.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from symzoo import config
from symzoo.device import CHOICES, resolve

log = logging.getLogger("symzoo")

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], None]]] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args)`` as the sub-command ``name``."""

    def register(run: Callable[[argparse.Namespace], None]):
        COMMANDS[name] = (help, arguments, run)
        return run

    return register


def options_argument(definition: str) -> Callable[[str], dict]:
    """argparse type: a JSON object validated against ``$defs/{definition}`` of the config schema."""

    def parse(text: str) -> dict:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise argparse.ArgumentTypeError(f"--options is not valid JSON ({err}): {text[:80]!r}") from err
        try:
            return config.validate(data, definition, where="--options")
        except config.ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    parse.__name__ = f"{definition} options"
    return parse


def _check_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="YAML config file")


@command("check-config", "validate a config file and print it with defaults filled in", _check_config_args)
def _check_config(args: argparse.Namespace) -> None:
    print(json.dumps(config.load(args.config), indent=2))


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--options", required=True, type=options_argument("dataset"), help="datasets.<name> as JSON")
    p.add_argument("--out", required=True, type=Path, help="output .npz (results/data/<name>.npz)")
    p.add_argument("--cache", type=Path, default=Path("results/downloads"), help="download cache directory")


@command("data", "build an image set (digits, CIFAR-10-GS) as an .npz", _data_args)
def _data(args: argparse.Namespace) -> None:
    from symzoo.stages import data

    data.run(args.options, args.out, args.cache)
    log.info("wrote %s", args.out)


def _smallcnnzoo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--options", required=True, type=options_argument("zoo_smallcnnzoo"), help="zoos.<name> as JSON")
    p.add_argument("--out", required=True, type=Path, help="zoo directory (results/zoo/<name>)")
    p.add_argument("--cache", type=Path, default=Path("results/downloads"), help="download cache directory")


@command("smallcnnzoo", "download a Small CNN Zoo archive and convert it to the zoo format", _smallcnnzoo_args)
def _smallcnnzoo(args: argparse.Namespace) -> None:
    from symzoo.stages import smallcnnzoo

    smallcnnzoo.run(args.options, args.out, args.cache)
    log.info("wrote %s", args.out)


def _device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=CHOICES, default="auto", help="auto: CUDA when present (default)")


def _zoo_shard_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--options",
        required=True,
        type=json.loads,
        help="JSON: the zoo's arch, batch_size, checkpoints, epochs, sampling, seed, plus first and count",
    )
    p.add_argument("--data", required=True, type=Path, help="image set .npz the networks train on")
    p.add_argument("--out", required=True, type=Path, help="shard directory (results/zoo/<name>/shards/<i>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _device_argument(p)


@command("zoo-shard", "train one shard of a generated zoo (networks trained together with torch.vmap)", _zoo_shard_args)
def _zoo_shard(args: argparse.Namespace) -> None:
    from symzoo.stages import zoo_shard

    options = config.validate(args.options, zoo_shard.DEFINITION, where="--options")
    zoo_shard.run(options, args.data, args.out, resolve(args.device), progress=not args.no_progress)


def _zoo_merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--options", required=True, type=options_argument("zoo_generate"), help="zoos.<name> as JSON")
    p.add_argument("--out", required=True, type=Path, help="zoo directory (results/zoo/<name>)")
    p.add_argument("shards", nargs="+", type=Path, help="shard directories, in order")


@command("zoo-merge", "merge the shards of a generated zoo; select a checkpoint, filter and split", _zoo_merge_args)
def _zoo_merge(args: argparse.Namespace) -> None:
    from symzoo.stages import zoo_merge

    zoo_merge.run(args.options, args.shards, args.out)
    log.info("wrote %s", args.out)


def _inr_zoo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--options", required=True, type=options_argument("zoo_inr"), help="zoos.<name> as JSON")
    p.add_argument("--data", required=True, type=Path, help="image set .npz whose images the INRs represent")
    p.add_argument("--out", required=True, type=Path, help="zoo directory (results/zoo/<name>)")
    _device_argument(p)


@command("inr-zoo", "fit an INR zoo: one SIREN per image, fitted together with torch.vmap", _inr_zoo_args)
def _inr_zoo(args: argparse.Namespace) -> None:
    from symzoo.stages import inr_zoo

    inr_zoo.run(args.options, args.data, args.out, resolve(args.device))
    log.info("wrote %s", args.out)


def named_path(text: str) -> tuple[str, Path]:
    """argparse type: ``NAME=PATH`` (NAME may contain slashes, e.g. ``zoo/method``)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, not {text!r}")
    return name, Path(path)


def _encoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--options", required=True, type=options_argument("encoder"), help="encoders.<name> as JSON")
    p.add_argument("--zoo", required=True, type=Path, help="zoo directory (trains on its train split)")
    p.add_argument("--data", required=True, type=Path, help="the zoo's image set .npz (for the functional loss)")
    p.add_argument("--out", required=True, type=Path, help="output directory (results/encoders/<zoo>/<name>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _device_argument(p)


@command("encoder", "train an autoencoder (NG-GNN or ScaleGMN encoder) with the functional KL loss", _encoder_args)
def _encoder(args: argparse.Namespace) -> None:
    from symzoo.fit.autoencoder import FitSettings
    from symzoo.stages import encoder

    settings = FitSettings.from_options(args.options)
    summary = encoder.run(args.zoo, args.data, args.out, settings, resolve(args.device), not args.no_progress)
    print(json.dumps(summary, indent=2, default=str))


def _pairs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--options", required=True, type=options_argument("merge"), help="the config's merge section")
    p.add_argument("--zoo", required=True, type=Path, help="zoo directory")
    p.add_argument("--out", required=True, type=Path, help="pairs table (results/merge/<zoo>/pairs.parquet)")


@command("pairs", "draw disjoint pairs of the best test-split networks (the merging protocol)", _pairs_args)
def _pairs(args: argparse.Namespace) -> None:
    from symzoo.stages import pairs

    o = args.options
    pairs.run(args.zoo, o["pairs"], o["top"], o["seed"], args.out)


def _model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, help="model.pt of the autoencoder (methods ae_<encoder>)")


def _fidelity_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fidelity",
        type=options_argument("fidelity"),
        default=None,
        help="the config's fidelity section as JSON (networks and images measured, medoid choice)",
    )


def _fidelity_settings(args: argparse.Namespace):
    from symzoo.stages.common import FidelitySettings

    return FidelitySettings.from_options(args.fidelity or config.validate({}, "fidelity", where="--fidelity"))


def _endpoints_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", required=True, help="naive, rebasin, rebasin_scaling, canonical, medoid or ae_<encoder>")
    p.add_argument("--zoo", required=True, type=Path, help="zoo directory")
    p.add_argument("--pairs", required=True, type=Path, help="pairs table (results/merge/<zoo>/pairs.parquet)")
    p.add_argument("--data", required=True, type=Path, help="the zoo's image set .npz (the medoid is chosen on x_val)")
    p.add_argument("--out", required=True, type=Path, help="endpoints.npy: float32 (pairs, 2, P)")
    p.add_argument("--seed", type=int, default=0, help="seed of re-basin's sweep order")
    _model_argument(p)
    _fidelity_argument(p)
    _device_argument(p)


@command("endpoints", "the two networks of every pair to interpolate between, for one merge method", _endpoints_args)
def _endpoints(args: argparse.Namespace) -> None:
    from symzoo.stages import endpoints

    model = _load_model(args.model, args.device)
    endpoints.run(
        args.zoo,
        args.pairs,
        args.data,
        args.method,
        args.out,
        model,
        _fidelity_settings(args),
        args.seed,
        resolve(args.device),
    )


def _load_model(path: Path | None, device: str):
    if path is None:
        return None
    from symzoo.models.autoencoder import load_autoencoder

    return load_autoencoder(path, resolve(device))


def _interpolate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zoo", required=True, type=Path, help="zoo directory (the pairs' original networks)")
    p.add_argument("--pairs", required=True, type=Path, help="pairs table")
    p.add_argument("--endpoints", required=True, type=Path, help="endpoints.npy of `symzoo endpoints`")
    p.add_argument("--data", required=True, type=Path, help="image set .npz (evaluated on its test split)")
    p.add_argument("--alphas", type=int, default=21, help="interpolation weights in [0, 1] (default 21)")
    p.add_argument("--out", required=True, type=Path, help="curves table (results/merge/<zoo>/<method>/curves.parquet)")
    _device_argument(p)


@command(
    "interpolate", "loss, accuracy and KL from the originals along (1 - alpha) A + alpha B, batched", _interpolate_args
)
def _interpolate(args: argparse.Namespace) -> None:
    from symzoo.stages import interpolate

    interpolate.run(args.zoo, args.pairs, args.endpoints, args.data, args.alphas, args.out, resolve(args.device))


def _orbit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--options", required=True, type=options_argument("merge"), help="the config's merge section")
    p.add_argument("--zoo", required=True, type=Path, help="zoo directory")
    p.add_argument("--data", required=True, type=Path, help="image set .npz (evaluated on its test split)")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        type=named_path,
        metavar="ae_NAME=PATH",
        help="an autoencoder to include as a method (repeat)",
    )
    p.add_argument("--out", required=True, type=Path, help="orbit curves (results/merge/<zoo>/orbit.parquet)")
    _fidelity_argument(p)
    _device_argument(p)


@command("orbit", "interpolate networks with random symmetry transforms of themselves, per method", _orbit_args)
def _orbit(args: argparse.Namespace) -> None:
    from symzoo.stages import orbit

    models = {name: _load_model(path, args.device) for name, path in args.model}
    orbit.run(args.zoo, args.data, args.options, _fidelity_settings(args), models, args.out, resolve(args.device))


def _fidelity_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zoo", required=True, type=Path, help="zoo directory")
    p.add_argument("--data", required=True, type=Path, help="the zoo's image set .npz (measured on its test images)")
    p.add_argument("--model", type=Path, help="model.pt of an autoencoder; without it: the controls")
    p.add_argument("--name", help="the rows' model name (default: ae_<encoder directory> or the control names)")
    p.add_argument("--out", required=True, type=Path, help="results/fidelity/<zoo>/<name>.parquet")
    _fidelity_argument(p)
    _device_argument(p)


@command(
    "fidelity", "fidelity of an autoencoder's reconstructions (or of the controls), train and test", _fidelity_args
)
def _fidelity(args: argparse.Namespace) -> None:
    from symzoo.merge.methods import autoencoder_method
    from symzoo.stages import fidelity

    model = _load_model(args.model, args.device)
    name = args.name or (autoencoder_method(args.model.parent.name) if args.model else "controls")
    fidelity.run(args.zoo, args.data, _fidelity_settings(args), args.out, model, name, resolve(args.device))


def _tables_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--curves",
        nargs="+",
        required=True,
        type=named_path,
        metavar="ZOO/METHOD=PATH",
        help="interpolation curves of one method on one zoo (repeat)",
    )
    p.add_argument(
        "--orbit",
        nargs="+",
        required=True,
        type=named_path,
        metavar="ZOO=PATH",
        help="orbit curves of one zoo (repeat)",
    )
    p.add_argument(
        "--history",
        nargs="*",
        default=[],
        type=named_path,
        metavar="ZOO/ENCODER=PATH",
        help="an encoder's training history (repeat)",
    )
    p.add_argument(
        "--fidelity",
        nargs="*",
        default=[],
        type=named_path,
        metavar="ZOO/NAME=PATH",
        help="fidelity rows of an encoder or of the controls (repeat)",
    )
    p.add_argument("--out-dir", required=True, type=Path, help="results/tables")


@command("tables", "barrier tables (per pair, aggregated, markdown) from the interpolation curves", _tables_args)
def _tables(args: argparse.Namespace) -> None:
    from symzoo.report import SUMMARY_MD
    from symzoo.stages import tables

    written = tables.run(dict(args.curves), dict(args.orbit), dict(args.history), dict(args.fidelity), args.out_dir)
    print(written[SUMMARY_MD])


def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--options", required=True, type=options_argument("predictor"), help="predict.models.<name> as JSON")
    p.add_argument("--zoo", required=True, type=Path, help="zoo directory (trains on its train split)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation, the batches and the transforms")
    p.add_argument("--model", type=Path, help="model.pt of the autoencoder a probe reads")
    p.add_argument("--out", required=True, type=Path, help="results/predict/<zoo>/<name>/seed-<seed>")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _device_argument(p)


@command("predict", "train a generalization predictor (test accuracy from weights) for one seed", _predict_args)
def _predict(args: argparse.Namespace) -> None:
    from symzoo.stages import predict

    predict.run(args.zoo, args.options, args.seed, args.out, resolve(args.device), args.model, not args.no_progress)


def _generalization_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--predictions",
        nargs="+",
        required=True,
        type=named_path,
        metavar="ZOO/MODEL/SEED=PATH",
        help="a predictions.parquet of `symzoo predict` (repeat)",
    )
    p.add_argument("--tables", required=True, type=Path, help="results/tables")
    p.add_argument("--figures", required=True, type=Path, help="results/figures")


@command("generalization", "the generalization-prediction table, summary, markdown and figure", _generalization_args)
def _generalization(args: argparse.Namespace) -> None:
    from symzoo.stages import generalization

    print(generalization.run(dict(args.predictions), args.tables, args.figures))


def _budget_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--point",
        nargs="+",
        required=True,
        type=named_path,
        metavar="ZOO/ENCODER/AXIS-VALUE=DIR",
        help="a budget point's directory (model, summary.json, fidelity.parquet)",
    )
    p.add_argument(
        "--controls",
        nargs="*",
        default=[],
        type=named_path,
        metavar="ZOO=PATH",
        help="the zoos' fidelity controls (the nearest-train oracle is drawn as a reference)",
    )
    p.add_argument("--table", required=True, type=Path, help="results/tables/budget.parquet")
    p.add_argument("--out-dir", required=True, type=Path, help="results/figures (writes budget.png and .pdf)")


@command("budget-report", "the fidelity-vs-budget table and figure", _budget_args)
def _budget(args: argparse.Namespace) -> None:
    from symzoo.stages import budget

    frame = budget.run(dict(args.point), dict(args.controls), args.table, args.out_dir)
    print(
        frame.filter(frame["split"] == "test").select(
            "zoo", "encoder", "axis", "value", "steps", "kl", "ident_recon", "ident_orig", "acc_gap", "kendall_tau"
        )
    )


def _figures_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables", required=True, type=Path, help="results/tables")
    p.add_argument("--out-dir", required=True, type=Path, help="results/figures")


@command("figures", "draw the figures (PNG and PDF) from the tables alone", _figures_args)
def _figures(args: argparse.Namespace) -> None:
    from symzoo.stages import figures

    figures.run(args.tables, args.out_dir)


def _bench_args(p: argparse.ArgumentParser) -> None:
    from symzoo.bench import BENCHMARKS

    p.add_argument("what", choices=BENCHMARKS, help="which benchmark")
    p.add_argument("--quick", action="store_true", help="smaller problem sizes (a smoke run, not for figures)")
    p.add_argument("--runs", type=int, help="convert: runs of the synthetic archive (x 9 rows; 30,000: full size)")
    p.add_argument("--workdir", type=Path, help="convert: where its temporary archive goes (about 3x the weights)")
    p.add_argument("--repeats", type=int, help="merge, canonicalize: timed calls of each side, taken in turns")
    p.add_argument("--widths", type=_ints, help="canonicalize: MLP hidden widths, comma-separated (16,64,256,1024)")
    p.add_argument("--zoo-size", type=int, help="canonicalize: networks the encoder's training is amortised over")
    _device_argument(p)


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


BENCH_OPTIONS = ("runs", "workdir", "repeats", "widths", "zoo_size")


@command(
    "bench",
    "benchmarks: print one JSON object of speeds measured side by side in one run (its tables also to stderr)",
    _bench_args,
)
def _bench(args: argparse.Namespace) -> None:
    from symzoo import bench

    options = {name: getattr(args, name) for name in BENCH_OPTIONS if getattr(args, name) is not None}
    result = bench.run(args.what, resolve(args.device), quick=args.quick, **options)
    table = bench.tables(result)
    if table:  # for reading; the JSON object on stdout holds the same rows
        print(table, file=sys.stderr)
    print(json.dumps(result, indent=2, default=str))


def _zoo_info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("zoo", type=Path, help="zoo directory")


@command("zoo-info", "validate a zoo and summarise it (networks per split, accuracy)", _zoo_info_args)
def _zoo_info(args: argparse.Namespace) -> None:
    import polars as pl

    from symzoo.data.zoo import read_zoo
    from symzoo.merge.interpolate import score_column

    zoo = read_zoo(args.zoo)
    zoo.check_finite()
    print(f"{args.zoo}: {len(zoo)} networks of {zoo.spec.num_params} parameters, {zoo.spec}")
    score = score_column(zoo.models)  # test accuracy, or the PSNR of an INR zoo
    summary = (
        zoo.models.group_by("split", "kept")
        .agg(pl.len().alias("n"), pl.col(score).mean().alias(f"mean_{score}"))
        .sort("split", "kept", nulls_last=True)
    )
    print(summary)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("symzoo")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="symzoo", description=__doc__.splitlines()[0])
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    top.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    top.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice; rules pass theirs)")
    subs = top.add_subparsers(dest="command", required=True, metavar="STAGE")
    for name, (help_text, arguments, run) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        arguments(sub)
        sub.set_defaults(run=run)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not sys.stderr.isatty():  # a rule's log file: log lines (every stage logs its progress), no bar frames
        os.environ.setdefault("TQDM_DISABLE", "1")
    verbose = args.verbose or bool(os.environ.get("SYMZOO_DEBUG"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        args.run(args)
    except BrokenPipeError:  # e.g. `symzoo check-config F | head`: the reader has gone, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError, ArithmeticError) as err:
        if verbose:
            raise
        print(f"symzoo {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
