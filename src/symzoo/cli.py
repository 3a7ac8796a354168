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
    from symzoo.data.images import build_image_set, save_image_set

    save_image_set(args.out, build_image_set(args.options, args.cache))
    log.info("wrote %s", args.out)


def _smallcnnzoo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--options", required=True, type=options_argument("zoo_smallcnnzoo"), help="zoos.<name> as JSON")
    p.add_argument("--out", required=True, type=Path, help="zoo directory (results/zoo/<name>)")
    p.add_argument("--cache", type=Path, default=Path("results/downloads"), help="download cache directory")


@command("smallcnnzoo", "download a Small CNN Zoo archive and convert it to the zoo format", _smallcnnzoo_args)
def _smallcnnzoo(args: argparse.Namespace) -> None:
    from symzoo.data.smallcnnzoo import build_small_cnn_zoo

    build_small_cnn_zoo(args.options, args.out, args.cache)
    log.info("wrote %s", args.out)


def _zoo_info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("zoo", type=Path, help="zoo directory")


@command("zoo-info", "validate a zoo and summarise it (networks per split, accuracy)", _zoo_info_args)
def _zoo_info(args: argparse.Namespace) -> None:
    import polars as pl

    from symzoo.data.zoo import read_zoo

    zoo = read_zoo(args.zoo)
    print(f"{args.zoo}: {len(zoo)} networks of {zoo.spec.num_params} parameters, {zoo.spec}")
    summary = (
        zoo.models.group_by("split", "kept")
        .agg(pl.len().alias("n"), pl.col("test_accuracy").mean().alias("mean_test_accuracy"))
        .sort("split", "kept", nulls_last=True)
    )
    print(summary)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="symzoo", description=__doc__.splitlines()[0])
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    subs = top.add_subparsers(dest="command", required=True, metavar="STAGE")
    for name, (help_text, arguments, run) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        arguments(sub)
        sub.set_defaults(run=run)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    verbose = args.verbose or bool(os.environ.get("SYMZOO_DEBUG"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        args.run(args)
    except (ValueError, OSError) as err:
        if verbose:
            raise
        print(f"symzoo {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
