"""The ``symzoo`` command: one sub-command per pipeline stage, each with explicit inputs and outputs.

Every Snakemake rule calls one of these; each also runs on its own (``symzoo <stage> --help``). A command is a
module with ``arguments(parser)`` and ``main(args)`` (the stage interface, :mod:`symzoo.stages.common`); this
file only lists them and runs the chosen one. Stage options are one section of the config, passed as JSON
(``--options``) and validated against the same schema the Snakefile uses.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

log = logging.getLogger("symzoo")

COMMANDS: dict[str, tuple[str, str]] = {
    "check-config": ("symzoo.stages.check_config", "validate a config file and print it with defaults filled in"),
    "data": ("symzoo.stages.data", "build an image set (8x8 digits, 5,000 MNIST digits, CIFAR-10-GS) as an .npz"),
    "smallcnnzoo": ("symzoo.stages.smallcnnzoo", "download a Small CNN Zoo archive and convert it to the zoo format"),
    "zoo-shard": ("symzoo.stages.zoo_shard", "train one shard of a generated zoo (networks trained with torch.vmap)"),
    "zoo-merge": ("symzoo.stages.zoo_merge", "merge the shards of a generated zoo; select a checkpoint, filter, split"),
    "inr-zoo": ("symzoo.stages.inr_zoo", "fit an INR zoo: one SIREN per image, fitted together with torch.vmap"),
    "encoder": ("symzoo.stages.encoder", "train an autoencoder (NG-GNN or ScaleGMN encoder) with the functional loss"),
    "predict": ("symzoo.stages.predict", "train a generalization predictor (test accuracy from weights), one seed"),
    "pairs": ("symzoo.stages.pairs", "draw disjoint pairs of the best test-split networks (the merging protocol)"),
    "medoid": ("symzoo.stages.medoid", "choose the train split's medoid of a zoo (the medoid control), once"),
    "originals": ("symzoo.stages.originals", "the loss and score of every pair's original networks, once per zoo"),
    "endpoints": ("symzoo.stages.endpoints", "the two networks of every pair to interpolate between, for one method"),
    "interpolate": ("symzoo.stages.interpolate", "loss, score and distance from the originals along each pair's path"),
    "merge-many": ("symzoo.stages.merge_many", "merge groups of K networks into one by every method (and MergeMany)"),
    "orbit": ("symzoo.stages.orbit", "interpolate networks with random symmetry transforms of themselves, per method"),
    "fidelity": ("symzoo.stages.fidelity", "fidelity of an autoencoder's reconstructions (or of the controls)"),
    "tables": ("symzoo.stages.tables", "barrier tables (per pair, aggregated, markdown) from the interpolation curves"),
    "figures": ("symzoo.stages.figures", "draw the figures (PNG and PDF) from the tables alone"),
    "generalization": ("symzoo.stages.generalization", "the generalization-prediction table, markdown and figure"),
    "budget-report": ("symzoo.stages.budget", "the fidelity-vs-budget table and figure"),
    "finetune": ("symzoo.stages.finetune", "one single-shot fine-tuning method (operator, SGD or control) on a zoo"),
    "finetune-report": ("symzoo.stages.finetune_report", "the fine-tuning table (Table 1 of the paper) and figure"),
    "represent": ("symzoo.stages.represent", "a zoo's networks aligned to its train medoid (raw, aligned, normalized)"),
    "generate": ("symzoo.stages.generate", "one generative model of a zoo's weights (or a control), sampled, judged"),
    "generate-report": ("symzoo.stages.generate_report", "the generation table and figures"),
    "zoo-info": ("symzoo.stages.zoo_info", "validate a zoo and summarise it (networks per split, score)"),
    "bench": ("symzoo.bench", "benchmarks: one JSON object of speeds measured side by side (tables also to stderr)"),
}
"""Command name -> (module, one-line help)."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("symzoo")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown (not installed)"


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line. Only the chosen command's module is imported (the first argument naming one; all of
    them when ``argv`` is None, e.g. for documentation), so a stage starts without loading the others."""
    top = argparse.ArgumentParser(prog="symzoo", description=__doc__.splitlines()[0])
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    top.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    top.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice; rules pass theirs)")
    subs = top.add_subparsers(dest="command", required=True, metavar="STAGE")
    chosen = None if argv is None else next((a for a in argv if a in COMMANDS), "")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        if chosen is None or name == chosen:
            module = importlib.import_module(module_name)
            module.arguments(sub)
            sub.set_defaults(main=module.main)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser(argv).parse_args(argv)
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
        args.main(args)
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
