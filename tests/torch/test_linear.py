"""The oneDNN route of core_torch's Linear gives F.linear's outputs and gradients."""

import pytest
import torch
from torch.nn import functional as F

from core_torch.networks import linear as onednn
from core_torch.networks.linear import MIN_ROWS, Linear, onednn_enabled


def _count_onednn_calls(monkeypatch) -> list:
    calls: list = []
    real = onednn._onednn_matmul

    def counted(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(onednn, "_onednn_matmul", counted)
    return calls


@pytest.mark.skipif(not onednn_enabled(), reason="this torch build has no oneDNN linear")
@pytest.mark.parametrize("shape", [(MIN_ROWS, 2048), (300, 64), (70, 5, 32)])
@pytest.mark.parametrize("needs", [(True, True), (False, True), (True, False)])
def test_onednn_linear_matches_f_linear_values_and_gradients(shape, needs, monkeypatch):
    calls = _count_onednn_calls(monkeypatch)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen, requires_grad=needs[0])
    layer = Linear(shape[-1], 256).requires_grad_(needs[1])
    out = layer(x)
    ref = F.linear(x, layer.weight, layer.bias)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    cot = torch.randn(out.shape, generator=gen)
    wrt = [t for t in (x, layer.weight, layer.bias) if t.requires_grad]
    fast = torch.autograd.grad((out * cot).sum(), wrt)
    slow = torch.autograd.grad((ref * cot).sum(), wrt)
    assert len(calls) == 1 + sum(needs)  # forward, and one product per gradient wanted (db is a sum)
    for a, b in zip(fast, slow):  # sums over rows: tolerance relative to the largest entry
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * float(b.abs().max()))


def test_single_rows_small_work_and_the_off_switch_use_f_linear(monkeypatch):
    calls = _count_onednn_calls(monkeypatch)
    small, big = Linear(16, 32), Linear(512, 512)
    big(torch.randn(1, 512))  # batch-1 sampling: MKL's gemv
    small(torch.randn(20, 16))  # a time MLP's size: too little work for oneDNN's call overhead
    assert calls == []
    big(torch.randn(64, 512))
    assert len(calls) == 1
    monkeypatch.setattr(onednn, "onednn_enabled", lambda: False)
    big(torch.randn(64, 512))
    assert len(calls) == 1


def test_onednn_switch_reads_the_environment(monkeypatch):
    onednn_enabled.cache_clear()
    monkeypatch.setenv("DPPO_TORCH_ONEDNN", "0")
    try:
        assert not onednn_enabled()
    finally:
        onednn_enabled.cache_clear()


@pytest.mark.skipif(not onednn_enabled(), reason="this torch build has no oneDNN linear")
def test_onednn_linear_gradient_is_differentiable_again():
    """create_graph (the exact likelihood's Hutchinson divergence differentiates an input gradient): the second
    derivative through a Mish between two oneDNN layers equals F.linear's."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 96, generator=gen, requires_grad=True)
    first, second = Linear(96, 128), Linear(128, 8)
    probe = torch.randn(64, 8, generator=gen)

    def second_derivative(fast: bool) -> list[torch.Tensor]:
        lin = (lambda m, h: m(h)) if fast else (lambda m, h: F.linear(h, m.weight, m.bias))
        out = lin(second, F.mish(lin(first, x)))
        (gx,) = torch.autograd.grad((out * probe).sum(), x, create_graph=True)
        return list(torch.autograd.grad((gx * gx).sum(), [x, first.weight]))

    for a, b in zip(second_derivative(True), second_derivative(False)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * float(b.abs().max()))
