"""NAS-Bench-201 space and the shared cell ops: strings, sizes, exact params/FLOPs, networks, graph."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from nasbench_lab import spaces
from nasbench_lab.nn import ops
from nasbench_lab.spaces.nb201 import EDGES, OPS, NB201Network, NB201Space

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ALL_CONV3 = (3,) * 6
genes_st = st.tuples(*[st.integers(0, len(OPS) - 1)] * 6)


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return spaces.get("nb201")


def _x(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


# --------------------------------------------------------------------------- strings and the tree
def test_registry_size_and_labels(space):
    assert isinstance(space, NB201Space) and space.name == "nb201"
    assert len(space) == 15625 == 5**6
    assert OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    assert space.product_space and space.level_sizes == [list(range(5))] * 6
    assert [space.level_name(i) for i in (0, 2, 5)] == ["edge 1←0", "edge 2←1", "edge 3←2"]
    assert [space.option_label(0, g) for g in range(5)] == list(OPS)
    assert space.encoding_length == {"categorical": 6, "onehot": 30}


def test_example_string(space):
    a = space.default()
    assert str(a) == EXAMPLE
    assert a.genes == (3, 3, 4, 1, 3, 1)
    assert space.parse(f"  {EXAMPLE}\n") == a
    assert space.parse(a.genes) == a


@settings(max_examples=200, deadline=None)
@given(genes_st)
def test_round_trip(genes):
    space = spaces.get("nb201")
    a = space.arch(genes)
    assert space.parse(str(a)) == a and a.genes == genes
    assert str(space.parse(str(a))) == str(a)


@pytest.mark.parametrize("bad", [
    "",
    "nor_conv_3x3~0",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|",  # two nodes
    EXAMPLE + "+|none~0|",  # four nodes
    "|nor_conv_3x3~0|none~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",  # too few edges
    "|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",  # ~k
    "|nor_conv_3x3~0|+|avg_pool_3x3~1|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",  # order
    "|conv_5x5~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",  # op
    "|nor_conv_3x3|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",  # no ~
    "nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",  # no |
    "[4,3,3]",
])
def test_bad_strings(space, bad):
    with pytest.raises(ValueError, match="nb201") as info:
        space.parse(bad)
    assert EXAMPLE in str(info.value)  # the message shows a valid example


def test_bad_genes(space):
    for bad in [(3,) * 5, (3,) * 7, (0, 0, 0, 0, 0, 5), (-1, 0, 0, 0, 0, 0)]:
        with pytest.raises(ValueError, match="nb201"):
            space.arch(bad)
    with pytest.raises(ValueError, match="nb201"):
        space.parse(spaces.get("nbmacro").default())


def test_neighbours_sample_enumerate(space):
    a = space.default()
    nbrs = space.neighbours(a)
    assert len(nbrs) == 6 * 4 == len(set(nbrs))
    assert all(space.distance(a, b) == 1 for b in nbrs)
    assert space.distance(a, space.arch((0,) * 6)) == 6
    assert space.mutate(a, 0) in nbrs
    assert space.sample(1) == space.sample(1)
    archs = space.enumerate()
    assert len(archs) == 15625 and archs[0].genes == (0,) * 6 and archs[-1].genes == (4,) * 6
    assert space.index(a) == archs.index(a)


def test_ops_on_paths(space):
    assert space.ops_on_paths(space.default()) == [
        ("skip_connect",), ("nor_conv_3x3", "nor_conv_3x3"), ("nor_conv_3x3", "skip_connect"),
        ("nor_conv_3x3", "avg_pool_3x3", "skip_connect"),
    ]
    assert space.ops_on_paths(space.arch((0,) * 6)) == []
    # 1<-0 is none: only the paths avoiding node 1 survive
    assert space.ops_on_paths(space.arch((0, 1, 1, 1, 1, 1))) == [("skip_connect",), ("skip_connect", "skip_connect")]


# --------------------------------------------------------------------------- params and FLOPs
@pytest.mark.parametrize(("genes", "params", "flops"), [
    (ALL_CONV3, 1_531_546, 220_119_680),  # NB-201 reports 1.531546 MB, 220.12 MFLOPs
    ((2,) * 6, 241_306, 31_376_000),  # all nor_conv_1x1
    ((3, 3, 4, 1, 3, 1), 802_426, 113_951_360),  # the example
    ((1,) * 6, 73_306, 7_783_040),  # all skip: only stem, reductions and head
    ((0,) * 6, 73_306, 7_783_040),
    ((4,) * 6, 73_306, 7_783_040),
])
def test_exact_params_and_flops(space, genes, params, flops):
    a = space.arch(genes)
    assert space.params(a) == params
    assert space.flops(a) == flops


def test_all_conv3x3_is_paper_size_and_flops_are_monotone(space):
    p = space.params(space.arch(ALL_CONV3))
    assert 1_500_000 < p < 1_560_000
    f = {g: space.flops(space.arch((g,) * 6)) for g in range(5)}
    assert all(v > 0 for v in f.values())
    assert f[3] > f[2] > f[1] == f[0] == f[4]
    # each conv3x3 edge (16 ch at 32x32, ...) adds its own MACs: one extra edge costs more than zero
    assert space.flops(space.arch((3, 0, 0, 0, 0, 0))) > f[0]
    assert space.params(space.arch(ALL_CONV3), num_classes=100) == p + 90 * 65


# --------------------------------------------------------------------------- networks
def test_model_structure_and_forward(space):
    net = space.model(space.default())
    assert isinstance(net, NB201Network)
    stem_conv, stem_bn = net.stem
    assert stem_conv.bias is None and stem_conv.out_channels == 16 and isinstance(stem_bn, nn.BatchNorm2d)
    assert len(net.stem) == 2  # no ReLU after the stem
    assert sum(isinstance(m, ops.ResNetBasicBlock) for m in net.layers) == 2 and len(net.layers) == 17
    assert all(m.affine for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert net.classifier.in_features == 64
    y = net(_x())
    assert y.shape == (2, 10)
    assert torch.allclose(net(_x(), space.default()), y)  # its own arch is accepted
    with pytest.raises(ValueError, match="supernet"):
        net(_x(), space.arch(ALL_CONV3))


def test_supernet_forward_paths_and_gradients(space):
    torch.manual_seed(0)
    net = space.supernet()
    x = _x()
    with pytest.raises(ValueError, match="needs an architecture"):
        net(x)
    a, b = space.default(), space.arch(ALL_CONV3)
    ya, yb = net(x, a), net(x, b.genes)  # an Arch or a gene tuple
    assert ya.shape == yb.shape == (2, 10)
    assert not torch.allclose(ya, yb)
    assert torch.allclose(net(x, str(a)), ya)  # the string works too

    net.zero_grad(set_to_none=True)
    net(x, a).sum().backward()
    for cell in (m for m in net.modules() if m.__class__.__name__ == "NB201Cell"):
        for k, edge in enumerate(cell.edges):
            for name, op in edge.items():
                for p in op.parameters():
                    # every chosen op of the example lies on a live path, so it gets a gradient
                    assert (p.grad is not None) == (name == OPS[a.genes[k]]), (k, name)
    assert net.stem[0].weight.grad is not None and net.classifier.weight.grad is not None


def test_standalone_inherits_supernet_weights(space):
    torch.manual_seed(0)
    sup = space.supernet().eval()
    a = space.default()
    model = space.model(a).eval()
    result = model.load_state_dict(sup.state_dict(), strict=False)
    assert result.missing_keys == []
    with torch.no_grad():
        assert torch.allclose(model(_x()), sup(_x(), a), atol=1e-6)


def test_none_cell_outputs_zeros():
    net = NB201Network((0,) * 6)
    cell = net.layers[0]
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(cell(x, (0,) * 6), torch.zeros_like(x))
    assert net(_x()).shape == (2, 10)


def test_graph(space):
    a = space.default()
    g = space.graph(a)
    assert isinstance(g, nx.DiGraph) and sorted(g.nodes) == [0, 1, 2, 3]
    assert [g.nodes[n]["label"] for n in range(4)] == ["input", "node 1", "node 2", "output"]
    assert g.number_of_edges() == 6 and nx.is_directed_acyclic_graph(g)
    assert {(u, v): d["op"] for u, v, d in g.edges(data=True)} == {
        (0, 1): "nor_conv_3x3", (0, 2): "nor_conv_3x3", (1, 2): "avg_pool_3x3",
        (0, 3): "skip_connect", (1, 3): "nor_conv_3x3", (2, 3): "skip_connect",
    }
    g0 = space.graph(space.arch((0,) * 6))
    assert g0.number_of_edges() == 6 and all(d["op"] == "none" for *_, d in g0.edges(data=True))


# --------------------------------------------------------------------------- ops
def _n(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", list(ops.OPS))
def test_every_op_shape(name, stride):
    x = torch.randn(2, 8, 9, 9)
    y = ops.make_op(name, 8, 12, stride)(x)
    assert y.shape == (2, 12, 5 if stride == 2 else 9, 5 if stride == 2 else 9)


def test_op_details():
    x = torch.randn(2, 4, 6, 6)
    assert ops.make_op("skip_connect", 4, 4, 1)(x) is x
    assert isinstance(ops.make_op("skip_connect", 4, 8, 2), ops.FactorizedReduce)
    z = ops.Zero(4, 4, 2)(x)
    assert z.shape == (2, 4, 3, 3) and not z.any()
    # count_include_pad=False: a constant image stays constant at the borders
    assert torch.allclose(ops.Pool(4, 4, 1, "avg")(torch.ones(1, 4, 5, 5)), torch.ones(1, 4, 5, 5))
    assert _n(ops.Pool(4, 4)) == 0 and _n(ops.Pool(4, 8)) == 4 * 8 + 2 * 8
    assert _n(ops.ReLUConvBN(4, 8, 3)) == 4 * 8 * 9 + 16
    assert _n(ops.ReLUConvBN(4, 8, 3, affine=False)) == 4 * 8 * 9
    assert _n(ops.SepConv(4, 8, 3)) == (4 * 9 + 4 * 4 + 8) + (4 * 9 + 4 * 8 + 16)
    assert _n(ops.DilConv(4, 8, 3)) == 4 * 9 + 4 * 8 + 16
    assert _n(ops.FactorizedReduce(4, 8)) == 2 * 4 * 4 + 16
    # NB-201 reduction block: two ReLUConvBN 3x3 and an avgpool + bias-free 1x1 shortcut (no BN)
    blk = ops.ResNetBasicBlock(16, 32, 2)
    assert _n(blk) == (16 * 32 * 9 + 64) + (32 * 32 * 9 + 64) + 16 * 32
    assert blk(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    with pytest.raises(ValueError, match="unknown op"):
        ops.make_op("conv_7x7", 4, 4)


@pytest.mark.parametrize("c_out", [2, 4, 9])
def test_factorized_reduce_is_two_stride_2_convs_on_offset_grids_in_either_layout(c_out):
    """The two 1x1 convs see every other pixel of the grids (0, 0) and (1, 1); in channels_last with
    one or two output channels per conv this backward used to corrupt the heap (oneDNN, torch 2.13 CPU)."""
    torch.manual_seed(0)
    fr = ops.FactorizedReduce(4, c_out, affine=False)
    x = torch.randn(2, 4, 7, 7)
    xr = torch.relu(x)
    y = torch.nn.functional.pad(xr, (0, 1, 0, 1))[:, :, 1:, 1:]
    conv = torch.nn.functional.conv2d
    expected = torch.cat([conv(xr, fr.conv_1.weight, stride=2), conv(y, fr.conv_2.weight, stride=2)], dim=1)
    expected = torch.nn.functional.batch_norm(expected, None, None, training=True)
    assert torch.allclose(fr(x), expected, atol=1e-5)
    fr_cl = fr.to(memory_format=torch.channels_last)
    xc = torch.randn(2, 4, 32, 32).contiguous(memory_format=torch.channels_last).requires_grad_()
    for _ in range(3):
        fr_cl(xc).square().sum().backward()
    assert xc.grad is not None and torch.isfinite(xc.grad).all()
