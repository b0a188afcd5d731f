"""NAS-Bench-Macro space: strings, exact params/FLOPs, canonical classes, networks, graph."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from nasbench_lab import spaces
from nasbench_lab.spaces.nbmacro import OPS, InvertedResidual, MacroNetwork, NBMacroSpace

genes_st = st.tuples(*[st.integers(0, 2)] * 8)


@pytest.fixture(scope="module")
def space() -> NBMacroSpace:
    return spaces.get("nbmacro")


def _x(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


# --------------------------------------------------------------------------- strings and the tree
def test_registry_size_and_labels(space):
    assert isinstance(space, NBMacroSpace) and space.name == "nbmacro"
    assert len(space) == 6561 == 3**8 == len(space.enumerate())
    assert OPS == ("Identity", "MB3_K3", "MB6_K5")
    assert space.product_space and space.encoding_length == {"categorical": 8, "onehot": 24}
    assert space.level_name(0) == "layer 1" and space.option_label(3, 2) == "MB6_K5"
    assert str(space.default()) == "22212220" and space.default().genes == (2, 2, 2, 1, 2, 2, 2, 0)


@settings(max_examples=200, deadline=None)
@given(genes_st)
def test_round_trip(genes):
    space = spaces.get("nbmacro")
    a = space.arch(genes)
    assert str(a) == "".join(map(str, genes))
    assert space.parse(str(a)) == a and space.parse(genes) == a


@pytest.mark.parametrize("bad", ["", "2221222", "222122201", "22212223", "2221222a", "2221 220", "[2,2,2]",
                                 "２２２１２２２０"])
def test_bad_strings(space, bad):
    with pytest.raises(ValueError, match="nbmacro") as info:
        space.parse(bad)
    assert "22212220" in str(info.value)


def test_neighbours(space):
    a = space.default()
    nbrs = space.neighbours(a)
    assert len(nbrs) == 8 * 2 == len(set(nbrs))
    assert all(space.distance(a, b) == 1 for b in nbrs)


# --------------------------------------------------------------------------- canonical classes
def test_canonical_classes(space):
    reps = {space.canonical(a) for a in space.enumerate()}
    assert len(reps) == 3969  # 3*3 (stage 1) * 3*7 * 3*7
    assert str(space.canonical("22101202")) == "22110220"
    assert str(space.canonical("20000000")) == "20000000"  # first layers and trailing identities stay
    assert str(space.canonical("02001020")) == "02010020"


@settings(max_examples=10, deadline=None)
@given(genes_st)
def test_canonical_builds_the_same_network(genes):
    space = spaces.get("nbmacro")
    a = space.arch(genes)
    c = space.canonical(a)
    assert space.canonical(c) == c
    assert space.params(a) == space.params(c) and space.flops(a) == space.flops(c)


# --------------------------------------------------------------------------- params and FLOPs
# 00000000 by hand: stem 3*32*9 + 64 = 928; stride-2 identities (1x1 conv + BN) 32->64: 2048 + 128,
# 64->128: 8192 + 256, 128->256: 32768 + 512; head 256*1280 + 2560; linear 1280*10 + 10 -> 387,882.
@pytest.mark.parametrize(("key", "params", "flops"), [
    ("00000000", 387_882, 7_713_280),
    ("11111111", 1_588_874, 53_246_464),
    ("22222222", 2_932_586, 105_660_928),
    ("22212220", 1_985_514, 85_164_544),
])
def test_exact_params_and_flops(space, key, params, flops):
    assert space.params(key) == params
    assert space.flops(key) == flops


def test_flops_monotone(space):
    f0, f1, f2 = (space.flops(k * 8) for k in "012")
    assert 0 < f0 < f1 < f2
    assert space.params("00000000", num_classes=100) == 387_882 + 90 * 1281


# --------------------------------------------------------------------------- networks
def test_model_structure(space):
    net = space.model("01200000")
    assert isinstance(net, MacroNetwork)
    conv, bn, relu = net.stem
    assert (conv.in_channels, conv.out_channels, conv.stride, conv.bias) == (3, 32, (1, 1), None)
    l1, l2, l3 = (next(iter(d.values())) for d in net.layers[:3])
    # stage-first identity: 1x1 stride-2 conv + BN; later identities are true identities
    assert isinstance(l1, nn.Sequential) and l1[0].kernel_size == (1, 1) and l1[0].stride == (2, 2)
    assert isinstance(next(iter(net.layers[4].values())), nn.Identity)
    assert isinstance(l2, InvertedResidual) and l2.residual and l2.conv[0].out_channels == 3 * 64
    assert isinstance(l3, InvertedResidual) and not l3.residual and l3.conv[3].kernel_size == (5, 5)
    assert l3.conv[0].out_channels == 6 * 64 and l3.conv[3].stride == (2, 2) and l3.conv[6].out_channels == 128
    assert not any(m.bias is not None for m in net.modules() if isinstance(m, nn.Conv2d))
    y = net(_x())
    assert y.shape == (2, 10)
    with pytest.raises(ValueError, match="supernet"):
        net(_x(), "22222222")


def test_supernet_forward_paths_and_gradients(space):
    torch.manual_seed(0)
    net = space.supernet()
    x = _x()
    with pytest.raises(ValueError, match="needs an architecture"):
        net(x)
    a, b = space.default(), space.parse("11111111")
    ya, yb = net(x, a), net(x, b.genes)
    assert ya.shape == yb.shape == (2, 10)
    assert not torch.allclose(ya, yb)
    assert torch.allclose(net(x, "22212220"), ya)

    net.zero_grad(set_to_none=True)
    net(x, a).sum().backward()
    for i, layer in enumerate(net.layers):
        for name, op in layer.items():
            for p in op.parameters():
                assert (p.grad is not None) == (name == OPS[a.genes[i]]), (i, name)
    assert net.stem[0].weight.grad is not None and net.head[0].weight.grad is not None


def test_standalone_inherits_supernet_weights(space):
    torch.manual_seed(0)
    sup = space.supernet().eval()
    model = space.model("20112100").eval()
    assert model.load_state_dict(sup.state_dict(), strict=False).missing_keys == []
    with torch.no_grad():
        assert torch.allclose(model(_x()), sup(_x(), "20112100"), atol=1e-6)


def test_graph(space):
    g = space.graph(space.default())
    assert isinstance(g, nx.DiGraph)
    order = list(nx.topological_sort(g))
    assert order == ["input"] + [f"layer{i}" for i in range(1, 9)] + ["head"]
    assert g.number_of_edges() == 9 and all(d["op"] == "identity" for *_, d in g.edges(data=True))
    assert [g.nodes[n]["op"] for n in order] == ["stem", *(OPS[int(c)] for c in "22212220"), "head"]
    assert [g.nodes[n]["resolution"] for n in order] == [32, 16, 16, 8, 8, 8, 4, 4, 4, 4]
    assert [g.nodes[n]["channels"] for n in order] == [32, 64, 64, 128, 128, 128, 256, 256, 256, 1280]
    assert [g.nodes[n]["stage"] for n in order] == [0, 1, 1, 2, 2, 2, 3, 3, 3, 4]
