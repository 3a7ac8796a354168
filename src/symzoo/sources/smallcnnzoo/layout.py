"""``layout.csv`` of a Small CNN Zoo archive, and the TensorFlow → torch layout of the network's variables.

``layout.csv`` has one row per TensorFlow variable (``varname``, ``start_idx``, ``end_idx``, ``shape``): the
column slice of ``weights.npy`` that holds it. Variables are read through the layout (never an assumed
order); TensorFlow's HWIO conv kernels become torch OIHW and dense (in, out) kernels become (out, in).
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from symzoo.nets.spec import NetSpec, small_cnn_zoo_spec
from symzoo.sources.smallcnnzoo.archive import WEIGHTS

LAYOUT_COLUMNS = ("varname", "start_idx", "end_idx", "shape")

_SHAPE = re.compile(r"\s*[(\[]?\s*\d+(?:\s*[,\s]\s*\d+)*\s*,?\s*[)\]]?\s*")

Layout = dict[tuple[str, str], tuple[int, int, tuple[int, ...]]]
"""``{(layer name, "kernel"|"bias"): (start, end, TensorFlow shape)}``."""


class Variable(NamedTuple):
    """One variable to convert: the spec's ``layer``, ``kind`` ("kernel" or "bias"), and its column slice."""

    layer: int
    kind: str
    start: int
    end: int


def read_layout(file: Path, where: str) -> Layout:
    """The variables of ``layout.csv``; errors name ``where`` (the member inside its archive)."""
    with open(file, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        for column in LAYOUT_COLUMNS:
            if column not in columns:
                raise ValueError(f"{where}: missing column {column!r} (columns: {columns})")
        rows = list(reader)
    variables: Layout = {}
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


def plan(layout: Layout, activation: str, side: int, n_columns: int, where: str) -> tuple[NetSpec, list[Variable]]:
    """The network's spec (in-channels from ``conv2d/kernel:0``) and its variables, checked against the spec
    and against the ``n_columns`` of ``weights.npy`` (no missing, extra, misshapen or overlapping slices)."""
    first = layout.get(("conv2d", "kernel"))
    if first is None:
        raise ValueError(f"{where}: no variable conv2d/kernel:0")
    if len(first[2]) != 4:
        raise ValueError(f"{where}: conv2d/kernel:0 has shape {first[2]}, expected (3, 3, in, 16)")
    spec = small_cnn_zoo_spec(activation, in_channels=first[2][2], side=side)
    names = layer_names(spec.num_layers)
    expected = {(name, kind) for name in names for kind in ("kernel", "bias")}
    extra = sorted(set(layout) - expected)
    if extra:
        raise ValueError(f"{where}: unexpected variable {extra[0][0]}/{extra[0][1]}:0 (expected {sorted(expected)})")
    variables, spans = [], []
    for layer, name in enumerate(names):
        for kind in ("kernel", "bias"):
            varname = f"{name}/{kind}:0"
            if (name, kind) not in layout:
                raise ValueError(f"{where}: no variable {varname}")
            start, end, shape = layout[(name, kind)]
            want = tf_shape(spec, layer, kind)
            if shape != want:
                raise ValueError(f"{where}: {varname} has shape {shape}, the Small CNN Zoo network needs {want}")
            if end - start != math.prod(shape) or start < 0 or end > n_columns:
                raise ValueError(
                    f"{where}: {varname} slice [{start}, {end}) does not hold shape {shape} "
                    f"inside the {n_columns} columns of {WEIGHTS}"
                )
            variables.append(Variable(layer, kind, start, end))
            spans.append((start, end, varname))
    spans.sort()
    for (_, end_a, name_a), (start_b, _, name_b) in zip(spans, spans[1:], strict=False):
        if start_b < end_a:
            raise ValueError(f"{where}: the slices of {name_a} and {name_b} overlap")
    covered = sum(end - start for start, end, _ in spans)
    if covered != n_columns:  # columns no variable describes: not the network the layout says
        raise ValueError(
            f"{where}: the variables cover {covered} of the {n_columns} columns of {WEIGHTS}; "
            "the layout does not describe the weights"
        )
    return spec, variables


def layer_names(num_layers: int) -> list[str]:
    """Keras' default names: conv2d, conv2d_1, ..., then dense (the last layer)."""
    return ["conv2d" if i == 0 else f"conv2d_{i}" for i in range(num_layers - 1)] + ["dense"]


def tf_shape(spec: NetSpec, layer: int, kind: str) -> tuple[int, ...]:
    """TensorFlow shape of a variable: conv kernels HWIO, dense kernels (in, out)."""
    if kind == "bias":
        return spec.tensor(layer, "bias").shape
    shape = spec.weight_shape(layer)
    if spec.is_conv(layer):
        o, i, h, w = shape
        return (h, w, i, o)
    return (shape[1], shape[0])


def to_torch(block: np.ndarray, spec: NetSpec, layer: int, kind: str) -> np.ndarray:
    """(n, tf-size) slice of weights → (n, torch-size) in the spec's layout."""
    n = len(block)
    if kind == "bias":
        return block
    block = block.reshape(n, *tf_shape(spec, layer, kind))
    # Per network: HWIO → OIHW is the transpose (3, 2, 0, 1); dense (in, out) → (out, in).
    block = block.transpose(0, 4, 3, 1, 2) if spec.is_conv(layer) else block.transpose(0, 2, 1)
    return block.reshape(n, -1)


def _parse_shape(text: str) -> tuple[int, ...]:
    """A shape written as text: "(3, 3, 1, 16)", "(16,)", also "[3, 3, 1, 16]" or "3 3 1 16"."""
    if not _SHAPE.fullmatch(text):
        raise ValueError(f"not a shape: {text!r}")
    return tuple(int(v) for v in re.findall(r"\d+", text))
