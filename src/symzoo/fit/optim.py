"""The optimiser every training loop here uses: AdamW with a linear learning-rate warm-up, then constant."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def adamw_with_warmup(
    params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float, amsgrad: bool, warmup_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW and its scheduler: step s (counted from 1) uses ``lr * min(1, s / warmup_steps)``, then ``lr``."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, amsgrad=amsgrad)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup_steps) if warmup_steps else 1.0)
    return opt, sched
