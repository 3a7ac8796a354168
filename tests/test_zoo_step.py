"""The vmapped training step: the traced and rewritten graph is really used, and computes eager vmap's values."""

import logging

import pytest
import torch

from symzoo.zoo import step as step_module
from symzoo.zoo.step import build_step
from tests.fixtures.zoo import SPECS

M, B = 5, 8


def example(spec, dropout: bool, seed: int = 1) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    masks = [(torch.rand(M, B, *s, generator=g) > 0.3) / 0.7 for s in spec.hidden_shapes()] if dropout else []
    return (
        torch.randn(M, spec.num_params, generator=g) * 0.3,
        torch.randn(M, B, *spec.input_shape, generator=g),
        torch.randint(0, spec.num_classes, (M, B), generator=g),
        torch.rand(M, generator=g) * 1e-2,
        *masks,
    )


@pytest.mark.parametrize("dropout, l2", [(False, False), (True, True)])
@pytest.mark.parametrize("name", SPECS)
def test_the_requested_rewriting_is_what_runs(name, dropout, l2):
    """Fails, not warns, when tracing falls back to eager vmap or a rewrite stops matching (e.g. a torch release
    that moves ``slice_backward``'s arguments): both would only show as a slower zoo."""
    spec = SPECS[name]
    step = build_step(spec, M, B, dropout, l2, trace=True)
    assert step.traced, "tracing the step failed and it fell back to eager vmap (see the log's warning)"
    ops = [str(n.target) for n in step.graph.graph.nodes if n.op == "call_function"]
    assert "aten.slice_backward.default" not in ops, "the slice_backward sums were not fused into one cat"
    assert ops.count("aten.cat.default") == 1
    dense = sum(not spec.is_conv(layer) for layer in range(spec.num_layers))
    assert ops.count("aten.baddbmm.default") == dense, "bias add + bmm were not fused"
    eager = build_step(spec, M, B, dropout, l2, trace=False)
    assert not eager.traced
    inputs = example(spec, dropout)
    for got, want in zip(step(*inputs), eager(*inputs), strict=True):
        torch.testing.assert_close(got, want)


def test_a_failed_trace_falls_back_to_eager_vmap_and_says_so(monkeypatch, caplog):
    def broken(gm):
        raise RuntimeError("a rewrite broke")

    monkeypatch.setattr(step_module, "_STEPS", {})
    monkeypatch.setattr(step_module, "rewrite", broken)
    spec = SPECS["mlp"]
    with caplog.at_level(logging.WARNING, logger="symzoo.zoo.step"):
        step = build_step(spec, M, B, False, True)
    assert not step.traced and "a rewrite broke" in caplog.text
    inputs = example(spec, False)
    for got, want in zip(step(*inputs), build_step(spec, M, B, False, True, trace=False)(*inputs), strict=True):
        assert torch.equal(got, want)
