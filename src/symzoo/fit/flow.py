"""Flow matching over network weights (the geometric-flow thesis; Lipman et al.'s conditional flow matching):
training through the one training loop, sampling and likelihoods, with Meta's ``flow_matching`` library.

A flow carries noise x0 (t = 0) to networks x1 (t = 1) in a :class:`~symzoo.models.flows.VelocityField`'s
coordinates. Training regresses the field on the conditional velocity of a probability path between coupled
pairs (x0, x1) of a batch:

- ``euclidean`` geometry: the straight path ``x_t = t x1 + (1 - t) x0`` (``AffineProbPath`` with the CondOT
  scheduler), target ``x1 - x0``; prior N(0, I);
- ``sphere`` geometry (a ReLU zoo's ``normalized`` representation): every hidden unit's incoming weights and bias
  lie on a unit sphere (:func:`sphere_blocks`), the output layer in Euclidean space; the path
  is the geodesic of that product manifold (:class:`ProductSpheres`, ``GeodesicProbPath``), the prior a standard
  Gaussian projected onto it (uniform on every sphere);
- couplings: ``independent`` (x0 drawn afresh for every x1) or ``ot`` (mini-batch optimal transport: the batch's
  noise re-paired to its networks by the exact OT plan of the squared Euclidean cost, POT's ``ot.emd``).

Sampling (:func:`sample`) integrates the field from fresh noise: ``euler`` (fixed steps) or an adaptive solver
(``dopri5``, torchdiffeq through ``flow_matching``'s ``ODESolver``), deterministic, or ``stochastic``: Euler–Maruyama
steps of the SDE with the same marginals, ``dx = [v + η (t v - x)] dt + sqrt(2 η (1 - t)) dW`` (for the straight
path the score is ``(t v - x) / (1 - t)``). On the spheres, ``RiemannianODESolver`` (Euler, projected).
Likelihoods (:func:`log_likelihood`) integrate the field backwards with a Hutchinson estimate of its divergence
(``ODESolver.compute_likelihood``), averaged over probes, and add the change of coordinates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import ot
import polars as pl
import torch
from flow_matching.path import AffineProbPath, GeodesicProbPath
from flow_matching.path.scheduler import CondOTScheduler
from flow_matching.solver import ODESolver, RiemannianODESolver
from flow_matching.utils import ModelWrapper
from flow_matching.utils.manifolds import Manifold, Sphere
from torch import Tensor

from symzoo.fit.train import OptimSettings, Trained, seeded, train
from symzoo.graph.neural_graph import GraphStructure
from symzoo.graph.stats import LayerStats
from symzoo.models.flows import FieldArch, VelocityField
from symzoo.nets.functional import evaluate
from symzoo.nets.spec import NetSpec

log = logging.getLogger(__name__)

GEOMETRIES = ("euclidean", "sphere")
COUPLINGS = ("independent", "ot")
SAMPLERS = ("euler", "dopri5", "stochastic")
MEASURES = ("loss", "accuracy")
"""Validation measures recorded per epoch (as ``val_<name>``): the flow-matching loss of the val networks (fixed
noise, times and couplings) and the mean accuracy on validation images of networks sampled from the flow."""
SELECT = {"loss": lambda m: (m["loss"],), "accuracy": lambda m: (-m["accuracy"], m["loss"])}
"""Selection measures (lower is better): the validation loss, or the validation accuracy of samples."""
HISTORY_SCHEMA: dict[str, type[pl.DataType]] = {
    "epoch": pl.Int64, "step": pl.Int64, "lr": pl.Float64, "train_loss": pl.Float64, "val_loss": pl.Float64,
    "val_accuracy": pl.Float64,
}  # fmt: skip


@dataclass(frozen=True)
class FlowSettings:
    """A generative model's entry (``generate.models.<name>``; the schema holds the defaults): the field's
    :class:`~symzoo.models.flows.FieldArch`, ``geometry``, ``coupling``, the :class:`~symzoo.fit.train.OptimSettings`,
    how validation samples (``val_samples`` networks, ``val_steps`` Euler steps) and the seed."""

    field: FieldArch
    optim: OptimSettings
    geometry: str
    coupling: str
    val_samples: int
    val_steps: int
    seed: int

    def __post_init__(self) -> None:
        if self.optim.select not in SELECT:
            raise ValueError(f"flow settings: select must be one of {tuple(SELECT)}, not {self.optim.select!r}")
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"flow geometry must be one of {GEOMETRIES}, not {self.geometry!r}")
        if self.coupling not in COUPLINGS:
            raise ValueError(f"flow coupling must be one of {COUPLINGS}, not {self.coupling!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FlowSettings:
        own = {f.name: options[f.name] for f in fields(cls) if f.name not in ("field", "optim")}
        return cls(field=FieldArch.from_options(dict(options)), optim=OptimSettings.from_options(options), **own)

    def to_options(self) -> dict[str, Any]:
        own = {k: v for k, v in asdict(self).items() if k not in ("field", "optim")}
        return self.field.to_dict() | self.optim.to_options() | own


def sphere_blocks(spec: NetSpec) -> list[torch.Tensor]:
    """For every hidden layer, the flat-parameter indices (units, fan_in + 1) of each unit's incoming weights and
    bias: the blocks a ReLU network's ``normalized`` representation puts on unit spheres."""
    blocks = []
    for layer in range(len(spec.widths)):
        w, b = spec.tensor(layer, "weight"), spec.tensor(layer, "bias")
        rows = torch.arange(w.offset, w.stop).view(w.shape[0], -1)
        blocks.append(torch.cat([rows, torch.arange(b.offset, b.stop).unsqueeze(1)], dim=1))
    return blocks


class ProductSpheres(Manifold):
    """The product of unit spheres (one per block of flat coordinates) and Euclidean space (the other coordinates):
    each block's maps are those of ``flow_matching``'s ``Sphere`` (its distance clamped to acos' domain), the
    Euclidean part's the identity. Works on unbatched and batched points alike (the path's ``vmap`` needs both)."""

    def __init__(self, dim: int, blocks: list[Tensor]) -> None:
        super().__init__()
        self.sizes = [tuple(b.shape) for b in blocks]
        inside = torch.cat([b.flatten() for b in blocks]) if blocks else torch.zeros(0, dtype=torch.long)
        rest = torch.ones(dim, dtype=torch.bool)
        rest[inside] = False
        order = torch.cat([inside, torch.arange(dim)[rest]])
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("undo", torch.argsort(order), persistent=False)
        self.sphere = _Sphere()

    def _split(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        parts = x[..., self.order].split([n * k for n, k in self.sizes] + [len(self.order) - self._inside()], -1)
        return [p.unflatten(-1, size) for p, size in zip(parts, self.sizes, strict=False)], parts[-1]

    def _inside(self) -> int:
        return sum(n * k for n, k in self.sizes)

    def _join(self, spheres: list[Tensor], rest: Tensor) -> Tensor:
        return torch.cat([*(s.flatten(-2) for s in spheres), rest], dim=-1)[..., self.undo]

    def _map(self, fn_sphere: Callable, fn_rest: Callable, *xs: Tensor) -> Tensor:
        split = [self._split(x) for x in xs]
        spheres = [fn_sphere(*(s[0][i] for s in split)) for i in range(len(self.sizes))]
        return self._join(spheres, fn_rest(*(s[1] for s in split)))

    def expmap(self, x: Tensor, u: Tensor) -> Tensor:
        return self._map(self.sphere.expmap, lambda a, b: a + b, x, u)

    def logmap(self, x: Tensor, y: Tensor) -> Tensor:
        return self._map(self.sphere.logmap, lambda a, b: b - a, x, y)

    def projx(self, x: Tensor) -> Tensor:
        return self._map(self.sphere.projx, lambda a: a, x)

    def proju(self, x: Tensor, u: Tensor) -> Tensor:
        return self._map(self.sphere.proju, lambda a, b: b, x, u)


class _Sphere(Sphere):
    def dist(self, x: Tensor, y: Tensor, *, keepdim: bool = False) -> Tensor:
        return torch.acos((x * y).sum(-1, keepdim=keepdim).clamp(-1.0, 1.0))


def build_field(spec: NetSpec, settings: FlowSettings, thetas_train: Tensor) -> VelocityField:
    """A field whose coordinates standardise the train networks: per parameter for a flat field, per layer (divided
    only, so the group still acts) for a graph field; on the spheres, the sphere blocks keep their coordinates."""
    basis = None
    if settings.field.coordinates == "whitened":
        if settings.geometry == "sphere":
            raise ValueError("whitened coordinates mix the units: the sphere geometry needs the parameters' own")
        shift, basis, scale = whitening(thetas_train)
    elif settings.field.field == "flat":
        shift, scale = thetas_train.mean(0), thetas_train.std(0).clamp_min(1e-6)
    else:
        scale, _ = LayerStats.fit(GraphStructure.from_spec(spec), thetas_train).per_parameter(spec)
        shift = torch.zeros(spec.num_params)
    if settings.geometry == "sphere":
        inside = torch.cat([b.flatten() for b in sphere_blocks(spec)])
        shift, scale = shift.clone(), scale.clone()
        shift[inside], scale[inside] = 0.0, 1.0
    return VelocityField(spec, settings.field, shift, scale, basis)


def whitening(thetas: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The mean (P,), the eigenbasis (P, P) and the square roots of the eigenvalues (P,) of the networks' covariance,
    shrunk toward a multiple of the identity by Ledoit and Wolf's rule (scikit-learn): a covariance estimated from
    fewer networks than parameters is singular without it."""
    from sklearn.covariance import LedoitWolf

    x = thetas.double()
    cov = torch.from_numpy(LedoitWolf().fit(x.numpy()).covariance_)
    values, vectors = torch.linalg.eigh(cov)
    return x.mean(0).float(), vectors.float(), values.clamp_min(values.max() * 1e-10).sqrt().float()


def manifold_of(spec: NetSpec, geometry: str) -> ProductSpheres | None:
    return ProductSpheres(spec.num_params, sphere_blocks(spec)) if geometry == "sphere" else None


def prior(n: int, dim: int, manifold: ProductSpheres | None, generator: torch.Generator, device) -> Tensor:
    """n draws of the prior: N(0, I), projected onto the manifold when there is one."""
    x0 = torch.randn(n, dim, generator=generator).to(device)
    return x0 if manifold is None else manifold.to(device).projx(x0)


def ot_pairs(x0: Tensor, x1: Tensor) -> Tensor:
    """The noise x0 (B, D) re-ordered to its networks x1 (B, D) by the exact OT plan of the squared Euclidean
    cost (``ot.emd`` with uniform marginals: for equal batch sizes a permutation)."""
    cost = torch.cdist(x0.double(), x1.double()).square().cpu().numpy()
    plan = ot.emd(ot.unif(len(x0)), ot.unif(len(x1)), cost)
    return x0[torch.from_numpy(np.asarray(plan).argmax(axis=0)).to(x0.device)]


def cfm_loss(
    field: VelocityField, x1: Tensor, coupling: str, manifold: ProductSpheres | None, generator: torch.Generator
) -> Tensor:
    """The conditional flow-matching loss of networks ``x1`` (B, P) (the field's coordinates): mean squared error
    between the field and the path's velocity at a uniform time, per coordinate."""
    x0 = prior(len(x1), x1.shape[1], manifold, generator, x1.device)
    if coupling == "ot":
        x0 = ot_pairs(x0, x1)
    t = torch.rand(len(x1), generator=generator).to(x1.device)
    path = AffineProbPath(CondOTScheduler()) if manifold is None else GeodesicProbPath(CondOTScheduler(), manifold)
    sample = path.sample(x_0=x0, x_1=x1, t=t)
    return (field(sample.x_t, sample.t.reshape(-1)) - sample.dx_t).square().mean()


def fit_flow(
    spec: NetSpec,
    settings: FlowSettings,
    thetas_train: Tensor,
    thetas_val: Tensor,
    val_images: tuple[Tensor, Tensor],
    device: torch.device,
    progress: bool = True,
    resume: Mapping[str, Any] | None = None,
    save_state: Callable[[dict[str, Any]], None] | None = None,
) -> Trained:
    """Train a flow on the networks ``thetas_train`` (N, P) (already in their representation). Every validation
    measures the flow-matching loss of ``thetas_val`` (fixed noise, times and couplings) and the mean accuracy on
    ``val_images`` of ``val_samples`` networks sampled with fixed noise; ``select`` keeps the epoch with the lowest
    loss or the highest accuracy."""
    manifold = manifold_of(spec, settings.geometry)
    with seeded(settings.seed, device):
        field = build_field(spec, settings, thetas_train.cpu()).to(device)
        if manifold is not None:
            manifold = manifold.to(device)
        x_train = field.coordinates(thetas_train.to(device)).detach()
        x_val = field.coordinates(thetas_val.to(device)).detach()

        def validate(model: VelocityField) -> dict[str, float]:
            g = torch.Generator().manual_seed(settings.seed + 1)
            with torch.no_grad():
                losses = [cfm_loss(model, x, settings.coupling, manifold, g) for x in x_val.split(256)]
            drawn = sample(model, settings.val_samples, "euler", settings.val_steps, g, settings.geometry)
            _, acc = evaluate(spec, drawn, *val_images)
            return {"loss": float(torch.stack(losses).mean()), "accuracy": float(acc.double().mean())}

        return train(
            field,
            lambda batch, g: cfm_loss(field, x_train[batch], settings.coupling, manifold, g),
            validate,
            SELECT[settings.optim.select],
            len(x_train),
            settings.optim,
            settings.seed,
            measures=MEASURES,
            desc=f"flow {settings.field.field} ({settings.geometry}, {settings.coupling})",
            resume=resume,
            save_state=save_state,
            progress=progress,
        )


class _Wrapped(ModelWrapper):
    """``flow_matching``'s call convention: ``model(x=x, t=t)`` with a scalar t."""

    def forward(self, x: Tensor, t: Tensor, **extras) -> Tensor:
        return self.model(x, t)


@torch.no_grad()
def sample(
    field: VelocityField,
    n: int,
    sampler: str,
    steps: int,
    generator: torch.Generator,
    geometry: str = "euclidean",
    eta: float = 1.0,
    tolerance: float = 1e-4,
) -> Tensor:
    """n networks (n, P) in the zoo's layout, drawn by integrating the field from fresh prior noise."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, not {sampler!r}")
    field.eval()
    device = field.shift.device
    spec = field.spec
    manifold = manifold_of(spec, geometry)
    x = prior(n, spec.num_params, manifold, generator, device)
    if manifold is not None:
        if sampler != "euler":
            raise ValueError(f"on the spheres only the (projected) Euler sampler is offered, not {sampler!r}")
        x = RiemannianODESolver(manifold.to(device), _Wrapped(field)).sample(x, step_size=1.0 / steps)
    elif sampler == "stochastic":
        dt = 1.0 / steps
        for i in range(steps):
            t = torch.full((n,), i * dt, device=device)
            v = field(x, t)
            noise = torch.randn(x.shape, generator=generator).to(device)
            x = x + (v + eta * (t[:, None] * v - x)) * dt + math.sqrt(2 * eta * (1 - i * dt) * dt) * noise
    else:
        step = 1.0 / steps if sampler == "euler" else None
        x = ODESolver(_Wrapped(field)).sample(x, step_size=step, method=sampler, atol=tolerance, rtol=tolerance)
    return field.parameters_of(x)


def log_likelihood(
    field: VelocityField, thetas: Tensor, steps: int, probes: int, seed: int, exact: bool = False
) -> Tensor:
    """log p(θ) per network (N,) under a Euclidean flow: the ODE from t = 1 back to 0 with a Hutchinson estimate of
    the divergence (one Rademacher probe per pass, ``probes`` passes averaged) or, ``exact``, the divergence itself
    (P backward passes a step: small networks only), plus the change of coordinates."""
    field.eval()
    device = field.shift.device
    x = field.coordinates(thetas.to(device))
    d = x.shape[1]

    def log_p0(z: Tensor) -> Tensor:
        return -0.5 * (z.square().sum(-1) + d * math.log(2 * math.pi))

    solver = ODESolver(_Wrapped(field))
    with seeded(seed, device):
        runs = [
            solver.compute_likelihood(x, log_p0, step_size=1.0 / steps, exact_divergence=exact)[1]
            for _ in range(1 if exact else probes)
        ]
    return torch.stack(runs).mean(0).detach() - field.log_scale()
