"""Optimizers batched over a population: SGD, Adam and RMSprop, each network its own kind and learning rate.

The updates are ``torch.optim``'s (defaults: no momentum, betas 0.9/0.999, alpha 0.99, eps 1e-8) applied to
the rows of stacked (M, P) tensors. Networks of a kind must be contiguous rows, so every update is a few
in-place ops on views; :class:`OptimizerOrder` permutes a population into that order and back.
"""

from __future__ import annotations

import math

import torch

from symzoo.zoo.sample import OPTIMIZERS

# torch.optim defaults
ADAM_BETAS = (0.9, 0.999)
RMSPROP_ALPHA = 0.99
EPS = 1e-8


class OptimizerOrder:
    """The rows of a population sorted by optimizer kind (stable: config order within a kind).

    ``rows[i]`` is the config row that goes to optimizer row ``i``.
    """

    def __init__(self, kinds: list[str], device: str | torch.device = "cpu") -> None:
        self.rows = sorted(range(len(kinds)), key=lambda i: OPTIMIZERS.index(kinds[i]))
        self.kinds = [kinds[i] for i in self.rows]
        self.device = torch.device(device)
        self._index = torch.tensor(self.rows, device=self.device)

    def to_optimizer(self, t: torch.Tensor) -> torch.Tensor:
        """Rows of ``t`` (config order, any device) in optimizer order, contiguous on the device."""
        return t.to(self.device)[self._index].contiguous()

    def to_configs(self, t: torch.Tensor) -> torch.Tensor:
        """Rows of ``t`` (optimizer order) back in config order."""
        out = torch.empty_like(t)
        out[self._index] = t
        return out


class BatchedOptimizers:
    """Each network's optimizer step on its row of ``theta`` (M, P), in place.

    ``kinds``: each row's optimizer (rows of a kind contiguous, see :class:`OptimizerOrder`); ``lr`` (M,):
    each row's learning rate; ``exp_avg`` / ``exp_avg_sq`` (M, P): the optimizers' state (Adam's moments,
    RMSprop's square average), also updated in place. The per-kind views are made once.
    """

    def __init__(
        self, kinds: list[str], lr: torch.Tensor, theta: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor
    ) -> None:
        lr = lr.to(theta.device, torch.float64).view(-1, 1)
        self.groups = []
        for kind in OPTIMIZERS:
            rows = [i for i, k in enumerate(kinds) if k == kind]
            if not rows:
                continue
            if rows != list(range(rows[0], rows[-1] + 1)):
                raise ValueError("networks must be grouped by optimizer")
            r = slice(rows[0], rows[-1] + 1)
            self.groups.append((kind, r, theta[r], exp_avg[r], exp_avg_sq[r], lr[r], (-lr[r]).to(torch.float32)))

    def step(self, grad: torch.Tensor, t: int) -> None:
        """Apply ``grad`` (M, P); ``t`` is the 1-based step count (Adam's bias correction)."""
        for kind, rows, p, m, v, lr, neg_lr in self.groups:
            g = grad[rows]
            if kind == "sgd":
                p.addcmul_(g, neg_lr)  # = torch.optim's add_(g, alpha=-lr)
            elif kind == "adam":
                beta1, beta2 = ADAM_BETAS
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                neg_step = (lr / -(1 - beta1**t)).to(torch.float32)
                denom = v.sqrt().div_(math.sqrt(1 - beta2**t)).add_(EPS)
                p.addcdiv_(m * neg_step, denom)  # = torch.optim's addcdiv_(m, denom, value=-step_size)
            else:
                v.mul_(RMSPROP_ALPHA).addcmul_(g, g, value=1 - RMSPROP_ALPHA)
                p.addcdiv_(g * neg_lr, v.sqrt().add_(EPS))
