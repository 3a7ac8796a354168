"""What the stages share: the stage interface's argument groups, and loading and writing their files.

The stage interface: every stage module (``symzoo.stages.<name>``, the command ``symzoo <name>``) has
``arguments(parser)``, which declares its command-line arguments with the groups below, and ``main(args)``,
which builds its typed settings from the validated options, loads its inputs (models included) and calls its
``run``; ``run`` takes typed values and is what tests and other Python code call. Repeated inputs are
``NAME=PATH`` pairs everywhere (``--model ae_scalegmn=model.pt``); a config section is JSON validated against
the schema (``--options`` for the stage's own, ``--<section>-options`` for another).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import torch

from symzoo import checkpoint, config
from symzoo.atomic import atomic_path
from symzoo.data.images import ImageSet, load_image_set
from symzoo.data.merge import read_medoid
from symzoo.data.zoo import Zoo, read_zoo
from symzoo.device import CHOICES, resolve

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the encoders (torch-geometric) load only when a stage is given a model
    from symzoo.models.autoencoder import Autoencoder


@dataclass(frozen=True)
class FidelitySettings:
    """How fidelity is measured: at most ``networks`` networks per split and ``images`` images, the controls'
    retrieval pool at most ``train_pool`` train networks (seeded choices): the config's ``fidelity`` section."""

    networks: int
    images: int
    train_pool: int
    seed: int

    @classmethod
    def from_options(cls, options: dict) -> FidelitySettings:
        return cls(**options)


def subset(ids: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` of ``ids``, a seeded choice kept in order."""
    if n >= len(ids):
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=n, replace=False))


def images(
    image_set: ImageSet, split: str, n: int, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``n`` images of a split with their labels (a seeded choice), on ``device``."""
    x, y = image_set.split(split)
    rows = subset(np.arange(len(x)), n, seed)
    return torch.from_numpy(x[rows]).to(device), torch.from_numpy(y[rows]).to(device)


def measured_on(
    zoo: Zoo, image_set: ImageSet, split: str, n: int, seed: int, device: torch.device, ids: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the networks ``ids`` of a zoo are measured on: at most ``n`` images of ``split`` and their labels
    (:func:`images`); for an INR zoo the pixel coordinates and the networks' own ground-truth images (n, pixels)
    (:func:`symzoo.zoo.inr.zoo_targets`; ``split`` and ``n`` do not apply)."""
    if zoo.spec.is_inr:
        from symzoo.zoo.inr import zoo_coordinates, zoo_targets

        ids = np.zeros(0, dtype=np.int64) if ids is None else ids
        return zoo_coordinates(zoo, device), zoo_targets(zoo, image_set, ids, device)
    return images(image_set, split, n, seed, device)


def load_inputs(zoo_dir: Path, data_path: Path) -> tuple[Zoo, ImageSet]:
    return read_zoo(zoo_dir), load_image_set(data_path)


def pair_inputs(
    zoo: Zoo, image_set: ImageSet, pairs: pl.DataFrame, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the pairs' paths are measured on: the original networks A and B (n, P) of every pair, and the test
    images and labels; for an INR zoo the pixel grid and the ground-truth images of each pair's A and B
    (2, n, pixels)."""
    ref_a, ref_b = (zoo.tensor(pairs[column].to_numpy(), device) for column in ("model_a", "model_b"))
    if zoo.spec.is_inr:
        x, _ = measured_on(zoo, image_set, "test", 0, 0, device)
        y = torch.stack(
            [measured_on(zoo, image_set, "test", 0, 0, device, pairs[c].to_numpy())[1] for c in ("model_a", "model_b")]
        )
    else:
        x, y = (torch.from_numpy(v).to(device) for v in image_set.split("test"))
    return ref_a, ref_b, x, y


def check_inputs(zoo: Zoo, images: ImageSet, ids: dict[str, np.ndarray], zoo_dir: Path, images_path: Path) -> None:
    """A clear error, naming the file, for a zoo and an image set a metanetwork cannot train on (or be measured
    on): train and val networks, images the networks take, labels within their classes."""
    for split in ("train", "val"):
        if len(ids[split]) == 0:
            raise ValueError(
                f"zoo {zoo_dir}: no kept networks in the {split!r} split ({zoo_dir / 'models.parquet'}); "
                "a trained metanetwork needs train and val networks"
            )
    spec = zoo.spec
    if spec.is_inr:  # INRs take coordinates; their images come from the image set by image_index
        if images.input_shape[0] != 1:
            raise ValueError(f"image set {images_path}: INR zoo {zoo_dir} needs grayscale images")
    elif tuple(images.input_shape) != tuple(spec.input_shape):
        raise ValueError(
            f"image set {images_path}: images of shape {tuple(images.input_shape)} do not fit zoo {zoo_dir}, "
            f"whose networks take {tuple(spec.input_shape)}"
        )
    if not spec.is_inr and images.num_classes > spec.num_classes:
        raise ValueError(
            f"image set {images_path}: labels go up to {images.num_classes - 1}, but the networks of zoo {zoo_dir} "
            f"have {spec.num_classes} classes"
        )
    for split in ("train", "val", "test"):
        if len(images.split(split)[0]) == 0:
            raise ValueError(f"image set {images_path}: x_{split} is empty")
    dataset = zoo.meta.get("dataset")
    if dataset is not None and dataset != images_path.stem:
        log.warning("zoo %s was trained on %r, but the image set is %s", zoo_dir, dataset, images_path)


def refuse_nonfinite(networks: Mapping[str, torch.Tensor], what: str) -> None:
    """A :class:`FloatingPointError` naming the result and its first rows with NaN/inf parameters, raised before
    anything is written (so a stage that fails leaves no partial output)."""
    for name, thetas in networks.items():
        bad = (~torch.isfinite(thetas).all(dim=1)).nonzero().flatten()
        if len(bad):
            raise FloatingPointError(
                f"{name}: {len(bad)} of {len(thetas)} {what} have NaN/inf parameters (rows {bad[:10].tolist()}); "
                "nothing written"
            )


def resumable(
    path: Path, kind: str, fingerprint: dict[str, Any]
) -> tuple[dict[str, Any] | None, Callable[[dict[str, Any]], None]]:
    """The training loop's resume state kept at ``path`` (:mod:`symzoo.checkpoint`): the state to resume from
    (None: start afresh; a stale file is removed) and the ``save_state`` callback that keeps it."""
    from symzoo.fit.train import STATE_VERSION

    resume = checkpoint.load(path, kind, STATE_VERSION, fingerprint)
    return resume, lambda state: checkpoint.save(path, kind, STATE_VERSION, fingerprint, state)


def load_medoid(path: Path, zoo: Zoo, device: torch.device) -> torch.Tensor:
    """The train medoid's parameters (P,) from its ``medoid.json`` (:mod:`symzoo.stages.medoid`)."""
    return zoo.tensor([read_medoid(path, len(zoo))], device)[0]


def load_models(named: Mapping[str, Path] | Any, device: torch.device) -> dict[str, Autoencoder]:
    """Autoencoders by name from ``NAME=PATH`` pairs (a mapping or a list of pairs) of ``--model``."""
    from symzoo.models.autoencoder import load_autoencoder

    return {name: load_autoencoder(path, device) for name, path in dict(named).items()}


def write_table(table: pl.DataFrame | str, path: Path) -> None:
    """One table, atomically: text as is, ``.csv`` as CSV, anything else as Parquet."""
    with atomic_path(path) as tmp:
        if isinstance(table, str):
            tmp.write_text(table)
        elif path.suffix == ".csv":
            table.write_csv(tmp)
        else:
            table.write_parquet(tmp)


def save_figure(fig, out_dir: Path, name: str) -> list[Path]:
    """Write ``fig`` as ``out_dir/name.<format>`` for every format, each atomically; closes the figure."""
    from symzoo.report import FORMATS
    from symzoo.report.figures import plt

    paths = []
    for fmt in FORMATS:
        path = Path(out_dir) / f"{name}.{fmt}"
        with atomic_path(path) as tmp:
            # no creation date (PDF) and one software tag: the same tables give the same bytes
            metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": "symzoo"}
            fig.savefig(tmp, format=fmt, bbox_inches="tight", dpi=150, metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths


# The stage interface's argument groups ------------------------------------------------------------------------


def options_argument(definition: str, flag: str = "--options") -> Callable[[str], dict]:
    """argparse type: a JSON object validated against ``$defs/{definition}`` of the config schema."""

    def parse(text: str) -> dict:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise argparse.ArgumentTypeError(f"{flag} is not valid JSON ({err}): {text[:80]!r}") from err
        try:
            return config.validate(data, definition, where=flag)
        except config.ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    parse.__name__ = f"{definition} options"
    return parse


def add_options(p: argparse.ArgumentParser, definition: str, help: str, section: str | None = None) -> None:
    """The stage's own config section (``--options``, required) or another one (``--<section>-options``,
    optional: the schema's defaults), as JSON validated against ``$defs/{definition}``."""
    if section is None:
        p.add_argument("--options", required=True, type=options_argument(definition), help=f"{help} as JSON")
        return
    flag = f"--{section}-options"
    default = config.validate({}, definition, where=flag)
    p.add_argument(flag, type=options_argument(definition, flag), default=default, help=f"{help} as JSON")


def named_path(text: str) -> tuple[str, Path]:
    """argparse type: ``NAME=PATH`` (NAME may contain slashes, e.g. ``zoo/method``)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, not {text!r}")
    return name, Path(path)


def add_named(p: argparse.ArgumentParser, flag: str, metavar: str, help: str, required: bool = False) -> None:
    """Repeated inputs as ``NAME=PATH`` pairs (``flag`` given once with several, or several times)."""
    p.add_argument(
        flag,
        nargs="+" if required else "*",
        action="extend",
        required=required,
        type=named_path,
        metavar=metavar,
        help=f"{help} (repeat)",
    )


def named(args: argparse.Namespace, flag: str) -> dict[str, Path]:
    """The ``NAME=PATH`` pairs of ``flag`` as a dict (empty if none were given)."""
    return dict(getattr(args, flag.lstrip("-").replace("-", "_")) or [])


def one_model(args: argparse.Namespace, device: torch.device) -> tuple[str, Autoencoder] | None:
    """The one ``--model NAME=PATH`` of a stage that takes at most one, loaded (None without one); more than one
    is an error."""
    models = named(args, "--model")
    if len(models) > 1:
        raise ValueError(f"--model takes one NAME=PATH here, not {len(models)}: {sorted(models)}")
    return next(iter(load_models(models, device).items()), None)


def add_report(p: argparse.ArgumentParser, what: str) -> None:
    """A report stage's inputs and outputs: ``--results ZOO/NAME=DIR`` (repeated; ``what`` the folders) and the
    ``--tables`` and ``--figures`` folders."""
    add_named(p, "--results", "ZOO/NAME=DIR", what, required=True)
    p.add_argument("--tables", required=True, type=Path, help="results/tables")
    p.add_argument("--figures", required=True, type=Path, help="results/figures")


def results_by_zoo(args: argparse.Namespace) -> dict[str, Path]:
    """The ``--results`` of a report stage, each named ``ZOO/NAME`` (an error names one that is not)."""
    results = named(args, "--results")
    for name in results:
        if "/" not in name:
            raise ValueError(f"--results {name}=...: expected ZOO/NAME=DIR")
    return results


def add_zoo(p: argparse.ArgumentParser, help: str = "zoo directory (results/zoo/<name>)") -> None:
    p.add_argument("--zoo", required=True, type=Path, help=help)


def add_data(p: argparse.ArgumentParser, help: str = "the zoo's image set .npz") -> None:
    p.add_argument("--data", required=True, type=Path, help=help)


def add_out(p: argparse.ArgumentParser, help: str, flag: str = "--out") -> None:
    p.add_argument(flag, required=True, type=Path, help=help)


def add_cache(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=Path, default=Path("results/downloads"), help="download cache directory")


def add_medoid(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--medoid", required=required, type=Path, help="the zoo's medoid.json (`symzoo medoid`)")


def add_device(p: argparse.ArgumentParser, progress: bool = False) -> None:
    """``--device`` (and, for the training stages, ``--no-progress``)."""
    p.add_argument("--device", choices=CHOICES, default="auto", help="auto: CUDA when present (default)")
    if progress:
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def device(args: argparse.Namespace) -> torch.device:
    return resolve(args.device)
