"""The cell ops' fast CPU paths compute what the textbook ops compute.

Each speed-up of ``nasbench_lab.nn.ops`` / ``MixedOp`` (issue 15) is checked here against the
plain formulation written out in the test: average pooling as a depthwise ones-convolution,
max pooling through channels_last, the relaxed edge without its ``none`` term.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nasbench_lab.nn.ops import Pool, Zero, box_mean
from nasbench_lab.spaces.darts import PRIMITIVES, MixedOp

CL = torch.channels_last


def _with_grad(x: torch.Tensor, fn) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_()
    y = fn(x)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    y.backward(g)
    return y.detach(), x.grad


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("hw", [(8, 8), (7, 5), (32, 32)])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_box_mean_is_avg_pool_without_the_padding(stride, hw, layout):
    x = torch.randn(3, 4, *hw, generator=torch.Generator().manual_seed(0))
    if layout == "channels_last":
        x = x.contiguous(memory_format=CL)
    ref_y, ref_g = _with_grad(x, lambda t: F.avg_pool2d(t, 3, stride, 1, count_include_pad=False))
    y, g = _with_grad(x, lambda t: box_mean(t, 3, stride, 1))
    assert y.shape == ref_y.shape
    torch.testing.assert_close(y, ref_y, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(g, ref_g, rtol=1e-6, atol=1e-6)


def test_box_mean_by_hand_on_a_corner_and_an_edge():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    y = box_mean(x)
    assert float(y[0, 0, 0, 0]) == pytest.approx((0 + 1 + 4 + 5) / 4)  # corner: 4 pixels in bounds
    assert float(y[0, 0, 0, 1]) == pytest.approx((0 + 1 + 2 + 4 + 5 + 6) / 6)  # edge: 6
    assert float(y[0, 0, 1, 1]) == pytest.approx(sum([0, 1, 2, 4, 5, 6, 8, 9, 10]) / 9)  # inside: 9


@pytest.mark.parametrize("stride", [1, 2])
def test_pool_max_on_cpu_is_exactly_max_pool_in_values_and_gradients(stride):
    x = torch.randn(2, 6, 9, 9, generator=torch.Generator().manual_seed(2))
    pool = Pool(6, 6, stride, "max")
    ref_y, ref_g = _with_grad(x, lambda t: F.max_pool2d(t, 3, stride, 1))
    y, g = _with_grad(x, pool)
    assert torch.equal(y, ref_y) and torch.equal(g, ref_g)
    assert y.is_contiguous()  # an NCHW network gets NCHW back


def test_pool_avg_matches_nn_avgpool_with_a_channel_map():
    torch.manual_seed(0)
    pool = Pool(4, 8, 1, "avg")  # 1x1 ReLUConvBN maps 4 -> 8 channels first
    x = torch.randn(2, 4, 6, 6)
    ref = nn.AvgPool2d(3, 1, 1, count_include_pad=False)(pool.preprocess(x))
    torch.testing.assert_close(pool(x), ref, rtol=1e-6, atol=1e-6)


def test_zero_keeps_the_layout_of_its_input():
    x = torch.randn(2, 4, 8, 8)
    assert Zero(4, 4, 2)(x).shape == (2, 4, 4, 4)
    assert Zero(4, 4, 1)(x).is_contiguous()
    z = Zero(4, 6, 1)(x.contiguous(memory_format=CL))
    assert z.is_contiguous(memory_format=CL) and z.shape == (2, 6, 8, 8) and not z.any()


@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_op_without_the_none_term_is_the_full_weighted_sum(stride):
    """Leaving ``w_none * 0`` out changes no value and no gradient: checked against the sum over
    every op, ``none`` included, written out here."""
    torch.manual_seed(3)
    edge = MixedOp(PRIMITIVES, 8, stride)
    assert "none" in PRIMITIVES
    x0 = torch.randn(2, 8, 8, 8)
    a0 = torch.randn(len(PRIMITIVES))

    def grads(forward):
        x, a = x0.clone().requires_grad_(), a0.clone().requires_grad_()
        edge.zero_grad(set_to_none=True)
        out = forward(x, torch.softmax(a, 0))
        out.backward(torch.ones_like(out))
        return out.detach(), x.grad, a.grad, [p.grad.clone() for p in edge.parameters() if p.grad is not None]

    fast = grads(lambda x, w: edge(x, w))
    full = grads(lambda x, w: sum(w[k] * op(x) for k, op in enumerate(edge.ops)))
    assert torch.equal(fast[0], full[0])  # x + 0 is exact
    for f, r in zip(fast[1:3], full[1:3]):
        torch.testing.assert_close(f, r, rtol=1e-6, atol=1e-7)
    assert len(fast[3]) == len(full[3])
    for f, r in zip(fast[3], full[3]):
        torch.testing.assert_close(f, r, rtol=1e-6, atol=1e-7)
