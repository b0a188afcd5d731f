"""The DARTS cell space: genotype text, size, sampling, graphs, encodings and networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasbench_lab import spaces
from nasbench_lab.spaces.darts import DARTS_V1, DARTS_V2, EDGES, PRIMITIVES, DartsSpace, edge_index

SPACE = spaces.get("darts")

# DARTS_V2 with node 3's edges in ascending-input order (the canonical text)
V2_CANONICAL = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 1), ('skip_connect', 2)], reduce_concat=[2, 3, 4, 5])"
)


def test_registered_and_parse_str_round_trip():
    assert isinstance(SPACE, DartsSpace)
    v2 = SPACE.parse(DARTS_V2)
    assert str(v2) == V2_CANONICAL
    assert SPACE.parse(V2_CANONICAL) == v2
    assert str(SPACE.parse(str(v2))) == str(v2)
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = SPACE.sample(rng)
        assert SPACE.parse(str(a)) == a
        assert str(SPACE.parse(str(a))) == str(a)
    # range(2, 6), double quotes, positional fields and whitespace are all accepted
    alt = V2_CANONICAL.replace("[2, 3, 4, 5]", "range(2, 6)").replace("'", '"')
    assert SPACE.parse("  " + alt + "\n") == v2
    assert SPACE.cell(v2, "normal")[6] == ("skip_connect", 0)
    assert SPACE.skip_count(v2) == 2 and SPACE.skip_count(v2, "reduce") == 3


@pytest.mark.parametrize("text, why", [
    ("hello", "Genotype"),
    (DARTS_V2.replace("'sep_conv_3x3', 0), ('sep_conv_3x3', 1)", "'none', 0), ('sep_conv_3x3', 1)", 1), "none"),
    (DARTS_V2.replace("sep_conv_3x3", "conv_7x7", 1), "unknown op"),
    (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "earlier node"),
    (DARTS_V2.replace("('sep_conv_3x3', 1), ('sep_conv_3x3', 0)", "('sep_conv_3x3', 0), ('sep_conv_3x3', 0)", 1),
     "must differ"),
    (DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[4, 5]"), "concat"),
    (DARTS_V2.replace(", ('skip_connect', 0), ('dil_conv_3x3', 2)]", "]"), "8 (op, input) pairs"),
    (DARTS_V2.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=__import__('os')"), "to open reduce_concat"),
])
def test_bad_genotype_text_names_the_space_and_shows_an_example(text, why):
    with pytest.raises(ValueError) as exc:
        SPACE.parse(text)
    msg = str(exc.value)
    assert msg.startswith("darts:") and why in msg and "Genotype(normal=" in msg


def test_size_is_the_product_over_nodes_and_enumerate_refuses():
    per_cell = 1 * 3 * 6 * 10 * 7 ** 8  # C(2,2) C(3,2) C(4,2) C(5,2) input pairs x 7 ops on 8 edges
    assert SPACE.size == per_cell ** 2 == 1_076_746_950_455_072_400
    assert 1e18 < SPACE.size < 1.1e18 and not SPACE.numerable
    with pytest.raises(ValueError, match="enumerate"):
        SPACE.enumerate()


def test_sampling_is_uniform_over_input_pairs_and_ops():
    rng = np.random.default_rng(1)
    archs = [SPACE.sample(rng) for _ in range(600)]
    genes = np.array([a.genes for a in archs])
    # node 5 (last of the normal cell) picks one of C(5,2)=10 distinct pairs with a < b
    a, b = genes[:, 12], genes[:, 14]
    assert (a < b).all() and b.max() == 4 and a.min() == 0
    counts = np.unique(a * 10 + b, return_counts=True)[1]
    assert len(counts) == 10 and counts.min() > 30  # ~60 each
    ops = genes[:, 1::2].ravel()
    assert set(ops) == set(range(1, 8))  # never "none"
    assert abs(np.bincount(ops, minlength=8)[1:] / len(ops) - 1 / 7).max() < 0.02


def test_neighbours_differ_in_one_gene_and_stay_valid():
    v2 = SPACE.parse(DARTS_V2)
    nbrs = SPACE.neighbours(v2)
    assert len(nbrs) == len(set(nbrs)) > 16 * 6  # every op of 16 edges can change to 6 others, plus inputs
    assert all(SPACE.distance(v2, n) == 1 for n in nbrs)
    assert SPACE.mutate(v2, 0) in nbrs


def test_encodings_onehot_per_decision_and_edge_op_adjacency():
    v2 = SPACE.parse(DARTS_V2)
    onehot = SPACE.encode(v2)
    # inputs: node i offers i+1 first inputs and i+1 second inputs; ops: 7 choices; 2 cells
    assert onehot.shape == (SPACE.encoding_length["onehot"],) == (2 * sum(2 * (i + 1) + 14 for i in range(4)),)
    assert onehot.sum() == SPACE.num_levels == 32
    x = SPACE.encode(v2, "adjacency").reshape(2, len(EDGES), 7)
    assert x.size == SPACE.encoding_length["adjacency"] == 196
    assert x.sum() == 16 and (x.sum(axis=2) <= 1).all()
    assert x[0, edge_index(2, 5), PRIMITIVES.index("dil_conv_3x3") - 1] == 1
    assert (SPACE.encode(v2, "categorical") == np.array(v2.genes)).all()


def test_graph_is_the_normal_cell_with_the_reduce_cell_attached():
    v2 = SPACE.parse(DARTS_V2)
    g = SPACE.graph(v2)
    assert g.number_of_nodes() == 7 and g.number_of_edges() == 8 + 4
    assert g.edges["c_{k-2}", "3"]["op"] == "skip_connect" and g.edges["0", "3"]["op"] == "dil_conv_3x3"
    assert all(g.in_degree(str(i)) == 2 for i in range(4))
    red = g.graph["reduce"]
    assert sorted(d["op"] for *_, d in red.edges(data=True) if d["op"] != "concat").count("max_pool_3x3") == 5


def test_darts_v2_evaluation_network_has_the_published_parameter_count():
    v2 = SPACE.parse(DARTS_V2)
    assert SPACE.params(v2) == 3_349_342  # DARTS reports 3.3M (auxiliary head excluded)
    # DARTS_V1 swaps V2's dil_conv_3x3 for a skip: fewer parameters
    assert SPACE.params(SPACE.parse(DARTS_V1)) < 3_349_342
    net = SPACE.model(v2, auxiliary=True)
    n_aux = sum(p.numel() for p in net.auxiliary_head.parameters())
    assert sum(p.numel() for p in net.parameters()) == 3_349_342 + n_aux
    assert len(net.cells) == 20 and sum(c.reduction for c in net.cells) == 2


def test_evaluation_network_forward_with_auxiliary_head_and_drop_path():
    torch.manual_seed(0)
    from nasbench_lab.spaces.darts import DartsNetwork

    v2 = SPACE.parse(DARTS_V2)
    net = DartsNetwork(v2, num_classes=10, C=4, layers=5, auxiliary=True, drop_path_prob=0.5)
    x = torch.randn(2, 3, 32, 32)
    logits, aux = net.train()(x)
    assert logits.shape == aux.shape == (2, 10)
    net.eval()
    out1, out2 = net(x), net(x)
    assert torch.equal(out1, out2)  # no drop-path at evaluation
    net.train()
    torch.manual_seed(1)
    a = net(x)[0]
    torch.manual_seed(2)
    b = net(x)[0]
    assert not torch.allclose(a, b)  # drop-path samples differ


def test_supernet_single_path_equals_relaxed_forward_with_one_hot_weights():
    """Relaxed forward with one-hot weights (chosen op on chosen edges, ``none`` elsewhere) = single path."""
    torch.manual_seed(0)
    net = DartsSpace(search_C=4, search_layers=3).supernet()
    arch = SPACE.sample(3)
    weights = {}
    for c, group in enumerate(("normal", "reduce")):
        w = torch.zeros(len(EDGES), len(PRIMITIVES))
        w[:, 0] = 1.0  # none
        g = arch.genes[16 * c:16 * (c + 1)]
        for i in range(4):
            for k in (4 * i, 4 * i + 2):
                e = edge_index(g[k], i + 2)
                w[e] = 0.0
                w[e, g[k + 1]] = 1.0
        weights[group] = w
    x = torch.randn(4, 3, 32, 32)
    single = net(x, arch)
    relaxed = net(x, weights=weights)
    assert single.shape == (4, 10)
    assert torch.allclose(single, relaxed, atol=1e-5)
    assert sum(p.numel() for p in SPACE.supernet().parameters()) > 1_000_000  # 8 cells, C=16, 14 x 8 ops


def test_supernet_needs_an_arch_or_weights():
    net = DartsSpace(search_C=4, search_layers=3).supernet()
    with pytest.raises(ValueError, match="arch"):
        net(torch.randn(1, 3, 32, 32))
