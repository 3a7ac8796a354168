"""Architecture specs and the flat-parameter layout shared by every stage.

A network is a chain of layers. Each layer maps ``sizes[i]`` units (MLP neurons or CNN channels) to
``sizes[i + 1]``; the last layer is always dense (after global average pooling for a CNN). Parameters
live in one flat float32 vector in torch layout (conv OIHW, dense out x in), per layer weight then bias.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

ACTIVATIONS = ("relu", "tanh", "sine")
TASKS = ("classification", "inr")
"""What a zoo's networks do, and so how they are scored: ``classification`` (images to class logits: test accuracy,
cross-entropy, KL between predictions) or ``inr`` (implicit neural representations, SIRENs: coordinates to pixel
values, scored by the render against an image: PSNR, render MSE)."""


@dataclass(frozen=True)
class ParamSlot:
    """Where one named parameter tensor (a layer's weight or bias) sits in the flat vector."""

    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def stop(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class NetSpec:
    """An MLP or a CNN (convolutions, activation, global average pooling, dense).

    ``input_shape`` is (C, H, W) of the images; an MLP flattens it. ``widths`` are the hidden layer
    sizes: neurons for an MLP, channels for a CNN.

    ``activation="sine"`` makes the MLP a SIREN (an implicit neural representation, INR): hidden activations
    sin(w0 (W h + b)) (the first layer's too), the last layer linear, output + 0.5. Its inputs are
    coordinates: ``input_shape`` (2, 1, 1) and ``num_classes`` 1 (the pixel value) for a grayscale image.

    ``task`` (one of :data:`TASKS`) is the one answer to "how are these networks scored?": ``"inr"`` for a SIREN,
    ``"classification"`` otherwise. It is stored in ``arch.json``; left out (None, e.g. an ``arch.json`` written
    before it was stored) it follows from the activation.
    """

    kind: Literal["mlp", "cnn"]
    input_shape: tuple[int, int, int]
    widths: tuple[int, ...]
    num_classes: int
    activation: Literal["relu", "tanh", "sine"] = "relu"
    kernel_size: int = 3
    stride: int = 2
    padding: int = 0
    w0: float = 30.0
    task: Literal["classification", "inr"] | None = None
    layout: tuple[ParamSlot, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if self.kind not in ("mlp", "cnn"):
            raise ValueError(f"spec kind must be 'mlp' or 'cnn', not {self.kind!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"spec activation must be one of {ACTIVATIONS}, not {self.activation!r}")
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"spec input_shape must be (C, H, W), not {self.input_shape}")
        if self.activation == "sine" and self.kind != "mlp":
            raise ValueError("spec: the sine activation (SIREN) is for MLPs only")
        if self.task is None:
            object.__setattr__(self, "task", "inr" if self.activation == "sine" else "classification")
        if self.task not in TASKS:
            raise ValueError(f"spec task must be one of {TASKS}, not {self.task!r}")
        if (self.task == "inr") != (self.activation == "sine"):
            raise ValueError(
                f"spec: task {self.task!r} with activation {self.activation!r}: INRs are SIRENs (sine activation), "
                "and SIRENs are INRs"
            )
        if not self.widths or min(self.widths) < 1 or self.num_classes < (1 if self.is_inr else 2):
            raise ValueError(f"spec needs hidden widths >= 1 and >= 2 classes, not {self.widths}, {self.num_classes}")
        if self.kind == "cnn":
            side = min(self.input_shape[1:])
            for _ in self.widths:
                side = (side + 2 * self.padding - self.kernel_size) // self.stride + 1
            if side < 1:
                raise ValueError(f"spec: input {self.input_shape} is too small for {len(self.widths)} convolutions")
        object.__setattr__(self, "layout", self._make_layout())

    @property
    def sizes(self) -> tuple[int, ...]:
        """Units per layer boundary: inputs, hidden widths, classes (the neural-graph layer sizes)."""
        n_in = self.input_shape[0] if self.kind == "cnn" else math.prod(self.input_shape)
        return (n_in, *self.widths, self.num_classes)

    @property
    def is_inr(self) -> bool:
        """``task == "inr"``: a SIREN that maps coordinates to pixel values, and is scored against an image."""
        return self.task == "inr"

    @property
    def num_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def num_params(self) -> int:
        return self.layout[-1].stop

    def is_conv(self, layer: int) -> bool:
        """Whether layer ``layer`` is a convolution (every layer but the last, for a CNN)."""
        return self.kind == "cnn" and layer < self.num_layers - 1

    def hidden_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shape (without batch) of each hidden layer's activations, e.g. for dropout masks."""
        if self.kind == "mlp":
            return tuple((w,) for w in self.widths)
        side, shapes = self.input_shape[1:], []
        for width in self.widths:
            side = tuple((s + 2 * self.padding - self.kernel_size) // self.stride + 1 for s in side)
            shapes.append((width, *side))
        return tuple(shapes)

    def weight_shape(self, layer: int) -> tuple[int, ...]:
        n_out, n_in = self.sizes[layer + 1], self.sizes[layer]
        if self.is_conv(layer):
            return (n_out, n_in, self.kernel_size, self.kernel_size)
        return (n_out, n_in)

    def _make_layout(self) -> tuple[ParamSlot, ...]:
        tensors, offset = [], 0
        for layer in range(self.num_layers):
            for name, shape in (("weight", self.weight_shape(layer)), ("bias", (self.sizes[layer + 1],))):
                tensors.append(ParamSlot(f"layers.{layer}.{name}", shape, offset))
                offset += tensors[-1].size
        return tuple(tensors)

    def tensor(self, layer: int, name: Literal["weight", "bias"]) -> ParamSlot:
        return self.layout[2 * layer + (name == "bias")]

    def to_dict(self) -> dict:
        """JSON-ready description: the spec's fields and its parameter layout."""
        spec = {k: v for k, v in asdict(self).items() if k != "layout" and (k != "w0" or self.is_inr)}
        spec["input_shape"], spec["widths"] = list(self.input_shape), list(self.widths)
        return {
            "spec": spec,
            "num_params": self.num_params,
            "layout": [{"name": t.name, "shape": list(t.shape), "offset": t.offset} for t in self.layout],
        }

    @classmethod
    def from_dict(cls, data: dict) -> NetSpec:
        """Inverse of :meth:`to_dict`; checks that a stored layout matches the spec's own. A ``spec`` without a
        ``task`` (written before it was stored) gets the one its activation implies."""
        spec = cls(**data["spec"])
        stored = data.get("layout")
        if stored is not None:
            ours = [{"name": t.name, "shape": list(t.shape), "offset": t.offset} for t in spec.layout]
            if stored != ours:
                raise ValueError(f"parameter layout does not match the spec {spec}")
        if "num_params" in data and data["num_params"] != spec.num_params:
            raise ValueError(f"num_params {data['num_params']} does not match the spec's {spec.num_params}")
        return spec


def task_of(arch: dict) -> str:
    """The task (:data:`TASKS`) of a zoo from its ``arch.json`` contents (:meth:`NetSpec.to_dict`'s form, checked
    like :meth:`NetSpec.from_dict`; an old file without ``task`` gets its activation's). Import-free: the workflow
    can call it on ``json.loads(Path("results/zoo/<zoo>/arch.json").read_text())``."""
    return NetSpec.from_dict(arch).task


def siren_spec(widths: tuple[int, ...] = (32, 32), w0: float = 30.0, channels: int = 1) -> NetSpec:
    """A SIREN [2, *widths, channels] on 2-d coordinates; (32, 32) is the INR zoos' [2, 32, 32, 1], 1,185 parameters."""
    return NetSpec("mlp", (2, 1, 1), tuple(widths), channels, "sine", w0=w0)


def small_cnn_zoo_spec(activation: str = "relu", in_channels: int = 1, side: int = 32) -> NetSpec:
    """The Small CNN Zoo network: 3 x Conv(16, 3x3, stride 2, VALID), GAP, Dense(10); 4,970 parameters."""
    return NetSpec("cnn", (in_channels, side, side), (16, 16, 16), 10, activation, kernel_size=3, stride=2)
