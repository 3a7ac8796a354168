"""Counter-based randomness of population training: the hash, batches and dropout masks per network."""

import random

import pytest
import torch

from symzoo.nets.spec import NetSpec
from symzoo.zoo.rng import _fmix_, _i64, network_batches
from tests.fixtures.zoo import SPECS, population


def test_the_hash_wraps_like_unsigned_64_bit_arithmetic():
    def splitmix(z: int) -> int:
        mask = (1 << 64) - 1
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    rng = random.Random(0)
    values = [rng.randrange(1 << 64) for _ in range(500)] + [0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]
    hashed = _fmix_(torch.tensor([_i64(v) for v in values]))
    assert [h % (1 << 64) for h in hashed.tolist()] == [splitmix(v) for v in values]


def test_batches_and_masks_depend_on_the_network_alone():
    spec = NetSpec("mlp", (1, 4, 4), (64, 64), 3)
    cfg = population(3, dropout=[0.0, 0.25, 0.5], train_fraction=[1.0, 0.5, 0.3])
    idx, masks = network_batches(spec, cfg, 1000, 64, epoch=3, step=5)
    for j in range(3):
        one_idx, one_masks = network_batches(spec, cfg[j : j + 1], 1000, 64, epoch=3, step=5)
        assert torch.equal(one_idx[0], idx[j])
        assert all(torch.equal(a[0], b[j]) for a, b in zip(one_masks, masks, strict=True))
    assert all((m[0] == 1).all() for m in masks)  # rate 0: no dropout
    for j, rate in ((1, 0.25), (2, 0.5)):
        mask = torch.cat([m[j].flatten() for m in masks])
        assert (mask == 0).float().mean().item() == pytest.approx(rate, abs=0.03)
        assert mask.unique().tolist() == [0.0, pytest.approx(1 / (1 - rate))]
    other_step = network_batches(spec, cfg, 1000, 64, epoch=3, step=6)
    assert not torch.equal(other_step[0], idx) and not torch.equal(other_step[1][0][1], masks[0][1])


def test_each_network_cycles_through_its_own_subset():
    spec = SPECS["mlp"]
    cfg = population(2, train_fraction=[1.0, 0.3])
    steps = 100 // 10
    epoch = torch.stack([network_batches(spec, cfg, 100, 10, 1, s)[0] for s in range(steps)], dim=1)
    assert epoch[0].flatten().unique().numel() == 100  # a full shuffle: every image once
    seen, counts = epoch[1].flatten().unique(return_counts=True)
    assert seen.numel() == 30 and counts.min() >= 3  # 30 images, reshuffled 3-4 times
    later = torch.stack([network_batches(spec, cfg, 100, 10, 2, s)[0] for s in range(steps)], dim=1)
    assert set(later[1].flatten().tolist()) == set(seen.tolist())  # the same subset every epoch
    assert not torch.equal(later[0], epoch[0])  # a new order
