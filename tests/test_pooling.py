"""Pooling search space (thesis 003 §2.2.1): layouts, parsing, neighbours, graph, models, FLOPs."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import torch

from nasbench_lab import spaces
from nasbench_lab.nn.flops import count_macs
from nasbench_lab.spaces.pooling import PoolingResNet, PoolingSpace


@pytest.fixture(scope="module")
def space() -> PoolingSpace:
    return spaces.get("pooling")


@pytest.mark.parametrize(
    ("name", "size", "default", "depth"),
    [("pooling", 36, "[4,3,3]", 10), ("pooling-resnet18", 56, "[3,2,2,2]", 9),
     ("pooling-resnet50", 560, "[4,4,6,3]", 17)],
)
def test_sizes_and_defaults(name, size, default, depth):
    s = spaces.get(name)
    assert len(s) == size == math.comb(depth - 1, s.num_resolutions - 1)
    archs = s.enumerate()
    assert len(archs) == len(set(archs)) == size
    assert str(s.default()) == default
    # one binary decision per block (the stem never pools), exactly p poolings
    assert s.num_levels == depth - 1
    assert all(len(a.genes) == depth - 1 and sum(a.genes) == s.num_poolings for a in archs)
    assert all(sum(s.layout(a)) == depth and min(s.layout(a)) >= 1 for a in archs)
    # the tree description and the closed-form size agree
    assert sum(1 for _ in s.iter_genes()) == size


def test_enumeration_order_matches_table_order(space):
    archs = [str(a) for a in space.enumerate()]
    assert archs[:3] == ["[1,1,8]", "[1,2,7]", "[1,3,6]"]
    assert archs[23] == "[4,3,3]"  # row 24 of thesis Table 2.1
    assert archs[-1] == "[8,1,1]"


def test_level_options_are_per_layer_with_the_pooling_count_enforced(space):
    assert list(space.level_options(())) == [0, 1]
    assert list(space.level_options((1, 1))) == [0]  # both poolings placed: identity only
    assert list(space.level_options((0,) * 7)) == [1]  # two decisions left, two poolings to place
    assert list(space.level_options((0,) * 7 + (1,))) == [1]
    assert space.level_name(0) == "block 1" and space.option_label(0, 1) == "pool"
    assert space.default().genes == (0, 0, 0, 1, 0, 0, 1, 0, 0)  # [4,3,3]: pools before blocks 4 and 7
    assert space.layout(space.default()) == (4, 3, 3)
    # the decision tree and the layouts describe the same 36 architectures
    assert {space.format(g) for g in space.iter_genes()} == {str(a) for a in space.enumerate()}


def test_parse_round_trip_and_tolerance(space):
    for a in space.enumerate():
        assert space.parse(str(a)) == a
    assert space.parse(" [ 4 , 3,3 ] ") == space.default()
    assert space.parse((4, 3, 3)) == space.default()  # a layout sequence
    assert space.parse((0, 0, 0, 1, 0, 0, 1, 0, 0)) == space.default()  # per-layer decisions
    assert space.from_layout([7, 1, 2]).text == "[7,1,2]"
    with pytest.raises(ValueError, match="looks like a layout"):
        space.arch([7, 1, 2])
    with pytest.raises(ValueError, match="exactly 2 poolings"):
        space.arch([1] * 3 + [0] * 6)


@pytest.mark.parametrize(
    ("bad", "why"),
    [("4,3,3", "cannot parse"), ("[4;3;3]", "cannot parse"), ("", "cannot parse"),
     ("[4,3]", "expected 3 layer counts"), ("[4,3,2,1]", "expected 3 layer counts"),
     ("[4,3,4]", "must sum to 10"), ("[0,5,5]", "at least one layer"), ((5, 5, 0), "at least one layer")],
)
def test_parse_errors_name_space_and_example(space, bad, why):
    with pytest.raises(ValueError) as err:
        space.parse(bad)
    msg = str(err.value)
    assert msg.startswith("pooling:") and why in msg and "'[4,3,3]'" in msg


def test_arch_of_another_space_is_rejected(space):
    with pytest.raises(ValueError, match="belongs to space"):
        space.parse(spaces.get("pooling-resnet18").default())


def test_neighbours_move_one_pooling_by_one_layer(space):
    nbrs = {str(a) for a in space.neighbours(space.default())}
    assert nbrs == {"[3,4,3]", "[5,2,3]", "[4,2,4]", "[4,4,2]"}
    assert {str(a) for a in space.neighbours(space.parse("[1,1,8]"))} == {"[1,2,7]"}  # corner
    for a in space.enumerate():
        for b in space.neighbours(a):
            assert space.distance(a, b) == 1
            assert a in space.neighbours(b)


def test_distance_is_shortest_path_of_moves(space):
    archs = space.enumerate()
    g = nx.Graph()
    g.add_edges_from((a, b) for a in archs for b in space.neighbours(a))
    hops = dict(nx.all_pairs_shortest_path_length(g))
    rng = np.random.default_rng(0)
    for i, j in rng.integers(len(archs), size=(60, 2)):
        a, b = archs[i], archs[j]
        assert space.distance(a, b) == hops[a][b] == space.distance(b, a)
        levels_a, levels_b = np.array(space.levels(a)), np.array(space.levels(b))
        assert space.distance(a, b) == int(np.abs(levels_a - levels_b).sum())


def test_mutate_and_sample(space):
    a = space.default()
    assert space.mutate(a, rng=1) in space.neighbours(a)
    assert space.sample(0) in set(space.enumerate())


def test_graph(space):
    g = space.graph(space.default())
    assert list(nx.topological_sort(g)) == ["stem"] + [f"block{i}" for i in range(1, 10)]
    assert g.number_of_edges() == 9
    stem = g.nodes["stem"]
    assert stem["op"] == "conv3x3" and stem["resolution"] == 32 and stem["channels"] == 16
    assert not stem["pool_before"]
    assert [n for n, d in g.nodes(data=True) if d["pool_before"]] == ["block4", "block7"]
    assert [g.nodes[f"block{i}"]["resolution"] for i in range(1, 10)] == [32] * 3 + [16] * 3 + [8] * 3
    assert [g.nodes[f"block{i}"]["channels"] for i in range(1, 10)] == [16] * 3 + [32] * 3 + [64] * 3
    assert g.edges["block3", "block4"]["op"] == "maxpool"
    assert g.edges["block1", "block2"]["op"] == "identity"
    g50 = spaces.get("pooling-resnet50").graph("[4,4,6,3]")
    assert g50.nodes["block16"]["op"] == "bottleneck" and g50.nodes["block16"]["channels"] == 2048


def test_resnet20_params_equal_for_every_arch(space):
    n = space.params(space.default())
    assert n == 272_474
    assert 260_000 <= n <= 280_000
    assert {space.params(a) for a in space.enumerate()} == {n}
    # the cached count is the real one of every standalone model
    for text in ("[1,1,8]", "[7,1,2]"):
        assert sum(p.numel() for p in space.model(space.parse(text)).parameters()) == n


def test_variant_params():
    assert spaces.get("pooling-resnet18").params("[3,2,2,2]") == 11_173_962
    assert spaces.get("pooling-resnet50").params("[4,4,6,3]") == 23_705_252  # 100 classes
    assert spaces.get("pooling-resnet50").default_num_classes == 100


def test_flops_analytic_matches_hook_count(space):
    for text in ("[1,1,8]", "[4,3,3]", "[7,1,2]", "[8,1,1]"):
        a = space.parse(text)
        assert space.flops(a) == count_macs(space.model(a), space.input_shape)
    assert space.flops(space.default()) == 40_813_184
    s18 = spaces.get("pooling-resnet18")
    a = s18.parse("[2,3,1,3]")
    assert s18.flops(a) == count_macs(s18.model(a), s18.input_shape)


def test_flops_grow_with_layers_at_high_resolution(space):
    flops = {str(a): space.flops(a) for a in space.enumerate()}
    assert len(set(flops.values())) > 1
    assert flops["[8,1,1]"] == max(flops.values())
    assert flops["[1,1,8]"] == min(flops.values())
    # moving a pooling later never decreases the cost
    assert flops["[5,2,3]"] > flops["[4,3,3]"] > flops["[3,4,3]"]


@torch.no_grad()
@pytest.mark.parametrize(("name", "text"), [("pooling", "[7,1,2]"), ("pooling-resnet18", "[1,1,1,6]")])
def test_forward_shapes(name, text):
    s = spaces.get(name)
    net = s.model(s.parse(text)).eval()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@torch.no_grad()
def test_resnet50_forward_shape():
    s = spaces.get("pooling-resnet50")
    net = s.model(s.parse("[1,1,1,14]"), num_classes=7).eval()  # small maps: cheap on CPU
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 7)


@torch.no_grad()
def test_supernet_shares_every_weight(space):
    torch.manual_seed(0)
    sup = space.supernet().eval()
    x = torch.randn(2, 3, 32, 32)
    for text in ("[1,1,8]", "[7,1,2]"):
        a = space.parse(text)
        net = space.model(a).eval()
        net.load_state_dict(sup.state_dict())  # identical keys and shapes
        torch.testing.assert_close(sup(x, a), net(x))
        torch.testing.assert_close(sup(x, text), sup(x, a.genes))
    # the poolings really move: two layouts give different outputs from the same weights
    assert not torch.allclose(sup(x, "[1,1,8]"), sup(x, "[8,1,1]"))
    assert sup.pools() == frozenset({4, 7})  # no arch: the standard layout


def test_supernet_rejects_bad_layouts(space):
    sup = space.supernet()
    with pytest.raises(ValueError, match="not a layout"):
        sup(torch.zeros(1, 3, 32, 32), (4, 3, 4))
    with pytest.raises(ValueError, match="not a layout"):
        PoolingResNet("resnet20", arch=(10, 0, 0))


def test_unknown_variant():
    with pytest.raises(ValueError, match="unknown variant"):
        PoolingSpace(variant="resnet34")


def test_encode_and_info(space):
    v = space.encode(space.default())
    assert v.shape == (18,) and v.sum() == 9  # one-hot of identity/pool for each of the 9 blocks
    assert space.encode(space.default(), "categorical").tolist() == [0, 0, 0, 1, 0, 0, 1, 0, 0]
    info = space.info()
    assert info["size"] == 36 and info["example"] == "[4,3,3]" and info["resolutions"] == [32, 16, 8]
    assert space.level_name(1) == "block 2"
