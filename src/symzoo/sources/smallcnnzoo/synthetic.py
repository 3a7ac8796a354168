"""A synthetic Small CNN Zoo archive in the exact upstream layout (Unterthiner et al. 2020), written streaming.

``{archive}.tar.xz`` holds one folder ``{archive}/`` with ``weights.npy`` (float32, one row per (run,
checkpoint), TensorFlow variables laid out by ``layout.csv``), ``metrics.csv.gz`` (row i describes weights
row i; written like pandas' ``to_csv``: a leading unnamed index column, NaN as an empty field) and
``layout.csv`` (varname, start_idx, end_idx, shape). The layout is deliberately NOT in Keras' variable
order (dense first, biases before kernels), so a converter that assumes an order fails.

Run ``i`` has the same weights and metrics in every archive built with the same ``seed`` (its random
stream depends on (seed, i) only), so archives with fewer runs share their runs with larger ones.

The members are written run by run into temporary files beside the archive and then streamed into the tar, so
memory does not grow with the archive: the full size (30,000 runs x 9 checkpoints, 5.4 GB of weights) builds in
a few megabytes. The tests' fixtures and ``symzoo bench convert`` build their archives with it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import math
import struct
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CHECKPOINTS = (0, 1, 2, 3, 20, 40, 60, 80, 86)

LAYOUT_ORDER = (
    "dense/bias:0",
    "conv2d_1/kernel:0",
    "conv2d/bias:0",
    "dense/kernel:0",
    "conv2d_2/bias:0",
    "conv2d/kernel:0",
    "conv2d_1/bias:0",
    "conv2d_2/kernel:0",
)
"""The order of the variables' column slices in weights.npy (and of the rows of layout.csv)."""

# The upstream metrics.csv config columns, written out here independently of the reader's list (convert.py), so
# that the fixtures built from this module catch a reader that drifts from the upstream header.
CONFIG_NAMES = (
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
METRICS_HEADER = (
    *(f"config.{name}" for name in CONFIG_NAMES),
    "modeldir",
    "step",
    "test_accuracy",
    "test_loss",
    "train_accuracy",
    "train_loss",
)


def tf_shapes(in_channels: int = 1) -> dict[str, tuple[int, ...]]:
    """TensorFlow shapes of the Small CNN Zoo network's variables (kernels HWIO, dense (in, out))."""
    return {
        "conv2d/kernel:0": (3, 3, in_channels, 16),
        "conv2d/bias:0": (16,),
        "conv2d_1/kernel:0": (3, 3, 16, 16),
        "conv2d_1/bias:0": (16,),
        "conv2d_2/kernel:0": (3, 3, 16, 16),
        "conv2d_2/bias:0": (16,),
        "dense/kernel:0": (16, 10),
        "dense/bias:0": (10,),
    }


def layout_rows(in_channels: int = 1) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """(varname, start_idx, end_idx, shape) in :data:`LAYOUT_ORDER`."""
    shapes, rows, start = tf_shapes(in_channels), [], 0
    for name in LAYOUT_ORDER:
        size = math.prod(shapes[name])
        rows.append((name, start, start + size, shapes[name]))
        start += size
    return rows


def modeldir(archive: str, run: int) -> str:
    """An upstream-looking model directory, unique per run."""
    digest = hashlib.sha1(f"{archive}:{run}".encode()).hexdigest()[:12]
    return f"gs://smallcnnzoo-train/{archive}/cnn_{digest}/{run}"


def _run_weights(rng: np.random.Generator, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """He-normal-ish initial values (so logits are O(1)) for every variable of one run."""
    init = {}
    for name, shape in shapes.items():
        if name.endswith("bias:0"):
            init[name] = rng.normal(0.0, 0.05, shape)
        else:
            fan_in = math.prod(shape[:-1])
            init[name] = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    return init


def _run(
    run: int, seed: int, checkpoints: Sequence[int], diverged: bool, activation: str, archive: str, in_channels: int
) -> tuple[np.ndarray, list[list[object]]]:
    """One run's weights rows (checkpoints, columns) as float32 and its metrics records (one per checkpoint)."""
    shapes, layout = tf_shapes(in_channels), layout_rows(in_channels)
    last = max(checkpoints)
    rng = np.random.default_rng([seed, run])
    init = _run_weights(rng, shapes)
    drift = {name: rng.normal(0.0, 0.5 * value.std() + 0.02, value.shape) for name, value in init.items()}
    config = {
        "activation": activation,
        "b_init": "zeros",
        "dataset": archive,
        "dnn_architecture": "cnn",
        "dropout": float(rng.choice([0.0, 0.05, 0.1, 0.2, 0.3, 0.5])),
        "epochs": last,
        "epochs_between_checkpoints": 20,
        "init_std": _log_uniform(rng, 1e-3, 0.5),
        "l2reg": _log_uniform(rng, 1e-8, 1e-2),
        "learning_rate": _log_uniform(rng, 5e-4, 5e-2),
        "num_layers": 3,
        "num_units": 16,
        "optimizer": str(rng.choice(["adam", "rmsprop", "sgd"])),
        "random_seed": int(rng.integers(0, 2**31 - 1)),
        "train_fraction": float(rng.choice([0.1, 0.25, 0.5, 1.0])),
        "w_init": str(rng.choice(["he_normal", "glorot_normal", "orthogonal", "RandomNormal"])),
    }
    final_accuracy = rng.uniform(0.2, 0.6)
    progress = [step / last if last else 1.0 for step in checkpoints]
    column = np.array(progress)[:, None]
    rows = np.concatenate([init[name].ravel() + column * drift[name].ravel() for name, *_ in layout], axis=1)
    rows = rows.astype(np.float32)
    if diverged:
        rows[1:] = np.nan
    records = []
    for step, p in zip(checkpoints, progress):
        test_accuracy = 0.1 + (final_accuracy - 0.1) * (1 - math.exp(-step / 10)) if step else 0.1
        train_accuracy = min(1.0, test_accuracy + 0.05 * p)
        losses = ("", "") if diverged else (_digits(-math.log(test_accuracy)), _digits(-math.log(train_accuracy)))
        records.append(
            [
                *(config[name] for name in CONFIG_NAMES),
                modeldir(archive, run),
                step,
                0.1 if diverged else round(test_accuracy, 6),
                losses[0],
                0.1 if diverged else round(train_accuracy, 6),
                losses[1],
            ]
        )
    return rows, records


def _digits(value: float) -> float:
    """``value`` to 10 significant digits: the text written is the same on every machine (np.exp and np.log may
    differ in the last bit between CPUs' vector code paths, and a float's repr shows every bit)."""
    return float(f"{value:.10g}")


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return _digits(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))


class _GzipText:
    """A text sink written to a gzip file as it comes (``gzip.compress(text, mtime=0)``'s bytes, streamed)."""

    def __init__(self, file: io.BufferedWriter) -> None:
        self._file, self._deflate = file, zlib.compressobj(9, zlib.DEFLATED, 31)

    def write(self, text: str) -> None:
        self._file.write(self._deflate.compress(text.encode()))

    def close(self) -> None:
        self._file.write(self._deflate.flush())


def make_small_cnn_zoo_archive(
    path: Path,
    n_runs: int = 12,
    checkpoints: Sequence[int] = CHECKPOINTS,
    seed: int = 0,
    nan_runs: Sequence[int] = (),
    activations: Sequence[str] = ("relu", "tanh"),
    archive: str = "cifar10",
    in_channels: int = 1,
    stored: bool = False,
) -> None:
    """Write a Small CNN Zoo archive with ``n_runs`` runs x ``checkpoints`` rows to ``path`` (a .tar.xz).

    Run ``i`` uses ``activations[i % len(activations)]``. Runs in ``nan_runs`` diverge: their weights are
    NaN at every checkpoint after the first and their losses are missing. Test accuracies of the final
    checkpoints spread over 0.2..0.6. Memory stays flat in ``n_runs`` (one run at a time; temporary files
    beside ``path``). ``stored``: xz without compression (:func:`write_tar_xz`), for archives of GBs.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    layout = layout_rows(in_channels)
    header = {"descr": "<f4", "fortran_order": False, "shape": (n_runs * len(checkpoints), layout[-1][2])}
    diverging = set(nan_runs)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        weights_path, metrics_path = Path(tmp) / "weights.npy", Path(tmp) / "metrics.csv.gz"
        with open(weights_path, "wb") as weights, open(metrics_path, "wb") as metrics_file:
            np.lib.format.write_array_header_1_0(weights, header)
            metrics = _GzipText(metrics_file)
            writer = csv.writer(metrics, lineterminator="\n")
            writer.writerow(["", *METRICS_HEADER])
            for run in range(n_runs):
                activation = activations[run % len(activations)]
                rows, records = _run(run, seed, checkpoints, run in diverging, activation, archive, in_channels)
                weights.write(rows.tobytes())
                first = run * len(checkpoints)
                writer.writerows([first + i, *record] for i, record in enumerate(records))
            metrics.close()
        layout_csv = io.StringIO()
        writer = csv.writer(layout_csv, lineterminator="\n")
        writer.writerow(["varname", "start_idx", "end_idx", "shape"])
        writer.writerows([name, start, end, str(tuple(shape))] for name, start, end, shape in layout)
        members = {
            "weights.npy": weights_path,
            "layout.csv": layout_csv.getvalue().encode(),
            "metrics.csv.gz": metrics_path,
        }
        write_tar_xz(path, archive, members, stored=stored)


def write_tar_xz(path: Path, folder: str, members: dict[str, bytes | Path], stored: bool = False) -> None:
    """Write ``members`` (name → bytes, or a file streamed into the tar; in order) under ``folder/`` into the
    tar.xz ``path``: LZMA2 preset 0, or with ``stored`` its data in stored (uncompressed) LZMA2 chunks
    (:class:`StoredXz`: the same format, written and read at disk speed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if stored:
            xz = stack.enter_context(StoredXz(stack.enter_context(open(path, "wb"))))
            tar = stack.enter_context(tarfile.open(fileobj=xz, mode="w|"))
        else:
            tar = stack.enter_context(tarfile.open(path, "w:xz", preset=0))
        info = tarfile.TarInfo(folder)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.mode = 0o644
            with _opened(data) as f:
                info.size = f.seek(0, io.SEEK_END)
                f.seek(0)
                tar.addfile(info, f)


def _opened(data: bytes | Path) -> io.BufferedIOBase:
    return io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")


def _varint(n: int) -> bytes:
    """xz's multibyte integer: 7 bits per byte, low first, the high bit marks a following byte."""
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])


def _crc32(data: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(data))


class StoredXz:
    """A writable .xz stream (one block, CRC32 check) whose LZMA2 data are stored chunks of up to 64 KiB.

    Every xz decoder reads it (the xz file format 1.1.0: stream header, block header with the LZMA2 filter,
    uncompressed chunks, index, stream footer); written without compressing, so a multi-GB archive of
    incompressible floats takes the time of its disk writes. A context manager; :meth:`close` ends the stream.
    """

    _CHUNK = 1 << 16
    _FLAGS = b"\x00\x01"  # check: CRC32

    def __init__(self, file: io.BufferedIOBase) -> None:
        self._file, self._pending = file, bytearray()
        self._size = self._crc = self._data_bytes = 0
        file.write(b"\xfd7zXZ\x00" + self._FLAGS + _crc32(self._FLAGS))
        # block header: flags (one filter, no sizes), LZMA2 (id 0x21) with a 1-byte property (dictionary 128 KiB)
        body = b"\x00" + _varint(0x21) + _varint(1) + b"\x0a"
        body += b"\x00" * (-(len(body) + 1 + 4) % 4)
        self._header = bytes([(len(body) + 1 + 4) // 4 - 1]) + body
        self._header += _crc32(self._header)
        file.write(self._header)

    def write(self, data: bytes) -> int:
        self._pending += data
        while len(self._pending) >= self._CHUNK:
            self._chunk(bytes(self._pending[: self._CHUNK]))
            del self._pending[: self._CHUNK]
        return len(data)

    def _chunk(self, data: bytes) -> None:
        control = 0x01 if self._size == 0 else 0x02  # stored; the first one resets the dictionary
        self._file.write(bytes([control]) + struct.pack(">H", len(data) - 1) + data)
        self._data_bytes += 3 + len(data)
        self._size += len(data)
        self._crc = zlib.crc32(data, self._crc)

    def close(self) -> None:
        if self._pending:
            self._chunk(bytes(self._pending))
            self._pending.clear()
        compressed = self._data_bytes + 1  # the end-of-data byte
        self._file.write(b"\x00" + b"\x00" * (-compressed % 4) + struct.pack("<I", self._crc))
        index = b"\x00" + _varint(1) + _varint(len(self._header) + compressed + 4) + _varint(self._size)
        index += b"\x00" * (-len(index) % 4)
        index += _crc32(index)
        footer = struct.pack("<I", len(index) // 4 - 1) + self._FLAGS
        self._file.write(index + _crc32(footer) + footer + b"YZ")

    def __enter__(self) -> StoredXz:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
