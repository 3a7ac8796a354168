"""What the task-neutral columns of the curves and barrier tables measure, per zoo task: labels and units.

The curves (:mod:`symzoo.merge.interpolate`) and barrier tables (:mod:`symzoo.merge.barrier`) name their
columns the same for every zoo: ``loss`` (and ``loss_barrier``, ...), ``score`` (``score_barrier``,
``endpoint_score_gap``, ...) and ``dist`` (``dist_a``, ``endpoint_dist``, ``mid_dist``, ...). The zoo's task
(``spec.task``, in ``arch.json`` and in the ``task`` column of every curves table) says what they are: for a
classifier zoo the test cross-entropy, the test accuracy and the KL between predictions; for an INR zoo the render
MSE against the ground truth, the PSNR (dB) and the MSE between renders. Tables and figures take their labels from
:data:`UNITS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from symzoo.nets.spec import TASKS


@dataclass(frozen=True)
class Units:
    """Labels of one task's quantities."""

    title: str
    """The heading of this task's zoos in the report."""
    loss: str
    """What ``loss`` is (also the unit of ``loss_barrier``, ``loss_a``, ...)."""
    score: str
    """What ``score`` is (``score_barrier``, ``endpoint_score_gap``, ``score_a``, ``orig_score_a``, ...)."""
    dist: str
    """What ``dist_a`` / ``dist_b`` are (``endpoint_dist``, ``mid_dist``): the distance from an original network."""
    axis: str
    """A figure's axis label of a quantity along an interpolation path, ``axis.format(loss or score)``."""

    def axis_label(self, quantity: str) -> str:
        """The axis label of ``"loss"`` or ``"score"`` along a path, e.g. ``test accuracy`` / ``PSNR (dB) vs mixed
        image``."""
        return self.axis.format({"loss": self.loss, "score": self.score}[quantity])


UNITS: dict[str, Units] = {
    "classification": Units(
        title="Classifier zoos",
        loss="cross-entropy",
        score="accuracy",
        dist="KL",
        axis="test {}",
    ),
    "inr": Units(
        title="INR zoos (image fitting)",
        loss="render MSE",
        score="PSNR (dB)",
        dist="render MSE",
        axis="{} vs mixed image",
    ),
}
"""Per task of :data:`symzoo.nets.spec.TASKS`, in that order (the report lists classifier zoos first)."""


def units(task: str) -> Units:
    """The labels of ``task`` (``classification`` or ``inr``); an error naming the task otherwise."""
    if task not in UNITS:
        raise ValueError(f"unknown zoo task {task!r}, not one of {TASKS}")
    return UNITS[task]
