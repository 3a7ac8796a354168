"""The Small CNN Zoo (Unterthiner et al. 2020): download an archive and convert it to the zoo format.

An archive ``{archive}.tar.xz`` holds one folder with
- ``weights.npy``: one row per (run, checkpoint), the network's TensorFlow variables side by side;
- ``metrics.csv.gz``: row i describes weights row i (``config.*`` hyper-parameters, ``modeldir``, ``step``,
  train/test accuracy and loss);
- ``layout.csv``: one row per TensorFlow variable (``varname``, ``start_idx``, ``end_idx``, ``shape``), the
  column slice of ``weights.npy`` that holds it.

The conversion reads the variables through the layout (never an assumed order), turns TensorFlow's HWIO
kernels into torch OIHW and dense (in, out) into (out, in), and keeps one checkpoint step and one activation.
``weights.npy`` (about 5 GB for CIFAR-10) is stream-extracted once into the cache and memory-mapped.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import gzip
import io
import json
import logging
import lzma
import math
import re
import sys
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import polars as pl
from tqdm import tqdm

from symzoo import config
from symzoo.atomic import atomic_path
from symzoo.data.download import ChecksumError, fetch, file_digest
from symzoo.data.zoo import ARCH, MODELS, PARAMS, finalize_models, write_zoo
from symzoo.nets.spec import ACTIVATIONS, NetSpec, small_cnn_zoo_spec

log = logging.getLogger(__name__)

ARCHIVE_URL = "https://storage.googleapis.com/gresearch/smallcnnzoo-dataset/{archive}.tar.xz"
ARCHIVE_SIDES = {"cifar10": 32, "svhn_cropped": 32, "mnist": 28, "fashion_mnist": 28}
"""Input side length (pixels) of each archive's images."""

WEIGHTS, METRICS, LAYOUT = "weights.npy", "metrics.csv.gz", "layout.csv"
MEMBERS = (WEIGHTS, METRICS, LAYOUT)

CONFIG_COLUMNS = tuple(
    f"config.{name}"
    for name in (
        "activation",
        "b_init",
        "dataset",
        "dnn_architecture",
        "dropout",
        "epochs",
        "epochs_between_checkpoints",
        "init_std",
        "l2reg",
        "learning_rate",
        "num_layers",
        "num_units",
        "optimizer",
        "random_seed",
        "train_fraction",
        "w_init",
    )
)
METRIC_COLUMNS = ("train_accuracy", "train_loss", "test_accuracy", "test_loss")
METRICS_COLUMNS = (*CONFIG_COLUMNS, "modeldir", "step", *METRIC_COLUMNS)
LAYOUT_COLUMNS = ("varname", "start_idx", "end_idx", "shape")

CHUNK_ROWS = 2048
"""Rows of ``weights.npy`` converted per step (bounds the memory of the conversion)."""

_STAMP = ".extracted.json"
_COPY_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHAPE = re.compile(r"\s*[(\[]?\s*\d+(?:\s*[,\s]\s*\d+)*\s*,?\s*[)\]]?\s*")


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive lock (flock) on ``lock_path``: concurrent jobs sharing a cache take turns."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------- download


def _archive_name(options: dict) -> str:
    archive = options["archive"]
    if archive not in ARCHIVE_SIDES:
        raise ValueError(f"smallcnnzoo: unknown archive {archive!r}, expected one of {sorted(ARCHIVE_SIDES)}")
    return archive


def _archive_url(options: dict) -> str:
    return options.get("url") or ARCHIVE_URL.format(archive=_archive_name(options))


def _download(options: dict, cache_dir: Path) -> tuple[Path, str]:
    """Download (or reuse) the archive; return its path and its verified sha256."""
    dest = Path(cache_dir) / f"{_archive_name(options)}.tar.xz"
    with _locked(dest.with_name(dest.name + ".lock")):
        return _download_unlocked(options, dest)


def _download_unlocked(options: dict, dest: Path) -> tuple[Path, str]:
    archive = _archive_name(options)
    url = _archive_url(options)
    record = dest.with_name(dest.name + ".sha256")
    configured = options.get("sha256")
    if configured:
        configured = str(configured).strip().lower()
        if not _SHA256.fullmatch(configured):
            raise ValueError(f"smallcnnzoo {archive}: sha256 must be 64 hex digits, not {options['sha256']!r}")
        try:
            fetch(url, dest, sha256=configured, desc=dest.name)
        except ChecksumError as err:
            raise ChecksumError(f"{dest}: sha256 does not match the configured sha256 {configured} ({err})") from err
        return dest, configured
    if record.is_file():
        recorded = (record.read_text().split() or [""])[0].lower()
        if not _SHA256.fullmatch(recorded):
            raise ValueError(f"{record}: not a sha256 record (delete it to record the archive's digest again)")
        try:
            fetch(url, dest, sha256=recorded, desc=dest.name)
        except ChecksumError as err:
            raise ChecksumError(
                f"{dest}: sha256 does not match {recorded}, recorded in {record} when it was first downloaded "
                f"({err}); if the archive changed upstream on purpose, delete {record} and {dest}"
            ) from err
        return dest, recorded
    fetch(url, dest, desc=dest.name)
    digest = file_digest(dest, "sha256")
    with atomic_path(record) as tmp:
        tmp.write_text(f"{digest}  {dest.name}\n")
    log.info("recorded sha256 %s of %s in %s (trust on first use)", digest, dest, record)
    return dest, digest


def download_archive(options: dict, cache_dir: Path) -> Path:
    """Download a Small CNN Zoo archive to ``cache_dir/{archive}.tar.xz`` (or reuse it) and verify it.

    ``options["url"]`` overrides the upstream URL. With ``options["sha256"]`` the archive must have that
    digest; without it the digest of the first download is recorded in ``{archive}.tar.xz.sha256`` and every
    later use is verified against the record (trust on first use). A mismatch raises :class:`ChecksumError`.
    """
    return _download(options, cache_dir)[0]


# ------------------------------------------------------------------------------------------- extraction


def _archive_stem(path: Path) -> str:
    name = path.name
    for suffix in (".tar.xz", ".txz", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _stamp_of(path: Path) -> dict:
    stat = path.stat()
    return {"archive": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _extract(path: Path, folder: Path) -> dict[str, str]:
    """Stream-extract the three members of ``path`` into ``folder`` (once per archive version).

    Returns the members' names inside the archive (for error messages). The archive is read in a single
    pass (tar streaming mode), so its large ``weights.npy`` is never held in memory.
    """
    stamp_path = folder / _STAMP
    stamp = _stamp_of(path)
    if stamp_path.is_file() and all((folder / m).is_file() for m in MEMBERS):
        try:
            previous = json.loads(stamp_path.read_text())
        except json.JSONDecodeError:
            previous = None
        if isinstance(previous, dict) and {k: previous.get(k) for k in stamp} == stamp:
            log.info("using %s extracted before into %s", path, folder)
            return previous.get("members", {m: m for m in MEMBERS})
    stamp_path.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    found: dict[str, str] = {}
    try:
        with lzma.open(path, "rb") as xz, tarfile.open(fileobj=xz, mode="r|") as tar:
            for member in tar:
                base = PurePosixPath(member.name).name
                if base not in MEMBERS:
                    continue
                if base in found:
                    raise ValueError(f"{path}: two members named {base} ({found[base]}, {member.name})")
                if not member.isfile():
                    raise ValueError(f"{path}: member {member.name} is not a regular file")
                found[base] = member.name
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has data
                with (
                    atomic_path(folder / base) as tmp,
                    open(tmp, "wb") as out,
                    tqdm(
                        total=member.size,
                        desc=f"extract {base}",
                        unit="B",
                        unit_scale=True,
                        file=sys.stderr,
                        disable=member.size < (64 << 20),
                    ) as bar,
                ):
                    while chunk := source.read(_COPY_CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
                    if out.tell() != member.size:
                        raise tarfile.ReadError(f"{member.name}: {out.tell()} of {member.size} bytes")
            while xz.read(_COPY_CHUNK):  # read to the end: the xz decoder verifies the whole stream
                pass
        missing = [m for m in MEMBERS if m not in found]
        if missing:
            raise ValueError(f"{path}: archive has no member {missing[0]} (found {sorted(found.values())})")
    except BaseException as err:
        for member in MEMBERS:  # members of an archive that failed its check are not to be trusted
            (folder / member).unlink(missing_ok=True)
        if isinstance(err, tarfile.TarError | lzma.LZMAError | EOFError | zlib.error):
            raise ValueError(f"{path}: corrupt or unreadable archive, not a complete tar.xz ({err})") from err
        raise
    with atomic_path(stamp_path) as tmp:
        tmp.write_text(json.dumps({**stamp, "members": found}, indent=2) + "\n")
    return found


# ------------------------------------------------------------------------------------------------ layout


def _parse_shape(text: str) -> tuple[int, ...]:
    """A shape written as text: "(3, 3, 1, 16)", "(16,)", also "[3, 3, 1, 16]" or "3 3 1 16"."""
    if not _SHAPE.fullmatch(text):
        raise ValueError(f"not a shape: {text!r}")
    return tuple(int(v) for v in re.findall(r"\d+", text))


def _read_layout(file: Path, where: str) -> dict[tuple[str, str], tuple[int, int, tuple[int, ...]]]:
    """``{(layer name, "kernel"|"bias"): (start, end, shape)}`` from ``layout.csv``."""
    with open(file, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        for column in LAYOUT_COLUMNS:
            if column not in columns:
                raise ValueError(f"{where}: missing column {column!r} (columns: {columns})")
        rows = list(reader)
    variables: dict[tuple[str, str], tuple[int, int, tuple[int, ...]]] = {}
    for row in rows:
        varname = (row["varname"] or "").strip()
        parts = varname.removesuffix(":0").split("/")
        if len(parts) < 2 or parts[-1] not in ("kernel", "bias"):
            raise ValueError(f"{where}: variable {varname!r} is not a '<layer>/kernel:0' or '<layer>/bias:0'")
        try:
            start, end = int(row["start_idx"]), int(row["end_idx"])
            shape = _parse_shape(row["shape"] or "")
        except (ValueError, SyntaxError, TypeError) as err:
            raise ValueError(f"{where}: variable {varname!r}: bad start_idx/end_idx/shape ({err})") from err
        key = (parts[-2], parts[-1])
        if key in variables:
            raise ValueError(f"{where}: variable {varname!r} appears twice")
        variables[key] = (start, end, shape)
    return variables


def _layer_names(num_layers: int) -> list[str]:
    """Keras' default names: conv2d, conv2d_1, ..., then dense (the last layer)."""
    return ["conv2d" if i == 0 else f"conv2d_{i}" for i in range(num_layers - 1)] + ["dense"]


def _tf_shape(spec: NetSpec, layer: int, kind: str) -> tuple[int, ...]:
    """TensorFlow shape of a variable: conv kernels HWIO, dense kernels (in, out)."""
    if kind == "bias":
        return spec.tensor(layer, "bias").shape
    shape = spec.weight_shape(layer)
    if spec.is_conv(layer):
        o, i, h, w = shape
        return (h, w, i, o)
    return (shape[1], shape[0])


def _to_torch(block: np.ndarray, spec: NetSpec, layer: int, kind: str) -> np.ndarray:
    """(n, tf-size) slice of weights → (n, torch-size) in the spec's layout."""
    n = len(block)
    if kind == "bias":
        return block
    tf_shape = _tf_shape(spec, layer, kind)
    block = block.reshape(n, *tf_shape)
    # Per network: HWIO → OIHW is the transpose (3, 2, 0, 1); dense (in, out) → (out, in).
    block = block.transpose(0, 4, 3, 1, 2) if spec.is_conv(layer) else block.transpose(0, 2, 1)
    return block.reshape(n, -1)


def _plan(
    layout: dict, activation: str, side: int, n_columns: int, where: str
) -> tuple[NetSpec, list[tuple[int, str, int, int]]]:
    """The spec (in-channels from conv2d/kernel) and, per variable, (layer, kind, start, end), checked."""
    first = layout.get(("conv2d", "kernel"))
    if first is None:
        raise ValueError(f"{where}: no variable conv2d/kernel:0")
    if len(first[2]) != 4:
        raise ValueError(f"{where}: conv2d/kernel:0 has shape {first[2]}, expected (3, 3, in, 16)")
    spec = small_cnn_zoo_spec(activation, in_channels=first[2][2], side=side)
    names = _layer_names(spec.num_layers)
    expected = {(name, kind) for name in names for kind in ("kernel", "bias")}
    extra = sorted(set(layout) - expected)
    if extra:
        raise ValueError(f"{where}: unexpected variable {extra[0][0]}/{extra[0][1]}:0 (expected {sorted(expected)})")
    plan, spans = [], []
    for layer, name in enumerate(names):
        for kind in ("kernel", "bias"):
            varname = f"{name}/{kind}:0"
            if (name, kind) not in layout:
                raise ValueError(f"{where}: no variable {varname}")
            start, end, shape = layout[(name, kind)]
            want = _tf_shape(spec, layer, kind)
            if shape != want:
                raise ValueError(f"{where}: {varname} has shape {shape}, the Small CNN Zoo network needs {want}")
            if end - start != math.prod(shape) or start < 0 or end > n_columns:
                raise ValueError(
                    f"{where}: {varname} slice [{start}, {end}) does not hold shape {shape} "
                    f"inside the {n_columns} columns of {WEIGHTS}"
                )
            plan.append((layer, kind, start, end))
            spans.append((start, end, varname))
    spans.sort()
    for (_, end_a, name_a), (start_b, _, name_b) in zip(spans, spans[1:], strict=False):
        if start_b < end_a:
            raise ValueError(f"{where}: the slices of {name_a} and {name_b} overlap")
    return spec, plan


# ----------------------------------------------------------------------------------------------- metrics


def _read_metrics(file: Path, where: str) -> pl.DataFrame:
    try:
        with gzip.open(file, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{where}: not a readable gzip file ({err})") from err
    try:
        metrics = pl.read_csv(io.BytesIO(data), infer_schema_length=None)
    except Exception as err:  # polars raises several error types for malformed CSV
        raise ValueError(f"{where}: not a readable CSV file ({err})") from err
    for column in METRICS_COLUMNS:
        if column not in metrics.columns:
            raise ValueError(f"{where}: missing column {column!r}")
    casts = {"step": pl.Int64, "modeldir": pl.String, "config.activation": pl.String}
    casts.update({c: pl.Float64 for c in METRIC_COLUMNS})
    for column, dtype in casts.items():
        try:
            metrics = metrics.with_columns(pl.col(column).cast(dtype))
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as err:
            raise ValueError(f"{where}: column {column!r} is not {dtype} ({err})") from err
    return metrics


def _models_frame(metrics: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """The zoo's models table for the selected ``rows`` of ``metrics``."""
    selected = metrics[rows]
    config = [c for c in selected.columns if c.startswith("config.")]
    return selected.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("model_id"),
        pl.Series("source_row", rows, dtype=pl.Int64),
        pl.col("modeldir").alias("run_id"),
        pl.col("step"),
        *[pl.col(c).alias(c.removeprefix("config.")) for c in config],
        *[pl.col(c) for c in METRIC_COLUMNS],
    )


# -------------------------------------------------------------------------------------------- conversion


def read_archive(path: Path, step: int, activation: str, cache_dir: Path) -> tuple[NetSpec, np.ndarray, pl.DataFrame]:
    """Convert the networks of one checkpoint ``step`` and one ``activation`` of a Small CNN Zoo archive.

    Returns the spec, float32 parameters (N, 4970-ish) in torch layout and the models table (model_id,
    source_row, run_id, step, the ``config.*`` columns without their prefix, train/test accuracy and loss).
    The archive's members are extracted once into ``cache_dir/{archive}/``; ``weights.npy`` is memory-mapped
    and converted in chunks of rows. Bad archives raise ValueError naming the archive and the member/column.
    """
    path = Path(path)
    if activation not in ACTIVATIONS:
        raise ValueError(f"smallcnnzoo: activation must be one of {ACTIVATIONS}, not {activation!r}")
    if not path.is_file():
        raise FileNotFoundError(f"smallcnnzoo: no archive {path}")
    archive = _archive_stem(path)
    folder = Path(cache_dir) / archive
    with _locked(folder.with_name(folder.name + ".extract.lock")):
        members = _extract(path, folder)
    side = ARCHIVE_SIDES.get(archive)
    if side is None:
        top = PurePosixPath(members[WEIGHTS]).parts[0]
        side = ARCHIVE_SIDES.get(top)
    if side is None:
        raise ValueError(f"{path}: unknown archive {archive!r}, expected one of {sorted(ARCHIVE_SIDES)}")

    def where(member: str) -> str:
        return f"{path}: {members[member]}"

    try:
        weights = np.load(folder / WEIGHTS, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{where(WEIGHTS)}: not a readable .npy array ({err})") from err
    if weights.ndim != 2 or weights.dtype.kind != "f":
        raise ValueError(f"{where(WEIGHTS)}: expected a 2-d float array, got {weights.dtype} {weights.shape}")
    layout = _read_layout(folder / LAYOUT, where(LAYOUT))
    spec, plan = _plan(layout, activation, side, weights.shape[1], where(LAYOUT))
    metrics = _read_metrics(folder / METRICS, where(METRICS))
    if len(metrics) != len(weights):
        raise ValueError(f"{where(METRICS)}: {len(metrics)} rows but {members[WEIGHTS]} has {len(weights)} rows")

    at_step = metrics["step"] == step
    if not at_step.any():
        steps = sorted(metrics["step"].drop_nulls().unique().to_list())
        raise ValueError(f"{where(METRICS)}: no rows with step {step} (steps: {steps})")
    chosen = at_step & (metrics["config.activation"] == activation).fill_null(False)
    others = metrics.filter(at_step & ~chosen)["config.activation"].value_counts(sort=True)
    if len(others):
        counts = ", ".join(f"{a}: {c}" for a, c in others.iter_rows())
        log.info(
            "%s: left out %d of %d networks at step %d with another activation than %s (%s)",
            path.name,
            others["count"].sum(),
            int(at_step.sum()),
            step,
            activation,
            counts,
        )
    rows = np.flatnonzero(chosen.to_numpy())
    if not len(rows):
        raise ValueError(f"{where(METRICS)}: no rows with step {step} and config.activation {activation!r}")

    params = np.empty((len(rows), spec.num_params), dtype=np.float32)
    chunks = range(0, len(rows), CHUNK_ROWS)
    for s in tqdm(chunks, desc=f"convert {archive}", unit="chunk", file=sys.stderr, disable=len(chunks) < 4):
        block = np.asarray(weights[rows[s : s + CHUNK_ROWS]], dtype=np.float32)
        for layer, kind, start, end in plan:
            t = spec.tensor(layer, "weight" if kind == "kernel" else "bias")
            params[s : s + len(block), t.offset : t.stop] = _to_torch(block[:, start:end], spec, layer, kind)
    models = _models_frame(metrics, rows)
    log.info("%s: converted %d %s networks at step %d", path.name, len(rows), activation, step)
    return spec, params, models


def build_small_cnn_zoo(options: dict, out_dir: Path, cache_dir: Path) -> Path:
    """Download, convert, filter and split a Small CNN Zoo archive into the zoo ``out_dir``.

    ``options`` is one zoo entry of the config (validated against the schema's ``zoo_smallcnnzoo``, which
    fills in the defaults). Networks with test accuracy above ``min_accuracy`` are kept and split by run.
    On any error no zoo file is left in ``out_dir``.
    """
    opts = config.validate({"source": "smallcnnzoo", **options}, "zoo_smallcnnzoo", where="smallcnnzoo options")
    archive = _archive_name(opts)
    out_dir, cache_dir = Path(out_dir), Path(cache_dir)
    path, digest = _download(opts, cache_dir)
    spec, params, models = read_archive(path, int(opts["step"]), opts["activation"], cache_dir)
    params, models = finalize_models(
        params,
        models,
        kept=pl.col("test_accuracy") > float(opts["min_accuracy"]),
        fractions=opts["fractions"],
        seed=int(opts["seed"]),
    )
    meta = {
        "dataset": opts["dataset"],
        "source": {
            "kind": "smallcnnzoo",
            "archive": archive,
            "url": _archive_url(opts),
            "sha256": digest,
            "step": int(opts["step"]),
        },
    }
    try:
        return write_zoo(out_dir, spec, params, models, meta=meta)
    except BaseException:
        for name in (PARAMS, MODELS, ARCH):  # a half-written zoo is worse than none
            (out_dir / name).unlink(missing_ok=True)
        raise
