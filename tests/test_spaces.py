"""Properties every registered search space must have (hypothesis over genes)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasbench_lab import spaces

NAMES = spaces.names()


@st.composite
def arch_of(draw, space):
    genes: list[int] = []
    for _ in range(space.num_levels):
        opts = list(space.level_options(tuple(genes)))
        genes.append(draw(st.sampled_from(opts)))
    return space.arch(genes)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_neighbours_and_encodings(name):
    space = spaces.get(name)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(arch_of(space))
    def check(arch):
        assert space.parse(str(arch)) == arch
        assert space.parse(str(arch)).text == str(arch)
        onehot = space.encode(arch, "onehot")
        assert onehot.shape == (space.encoding_length["onehot"],)
        assert onehot.sum() == space.num_levels
        assert space.encode(arch, "categorical").shape == (space.num_levels,)
        nbrs = space.neighbours(arch)
        assert nbrs and arch not in nbrs
        for n in nbrs[:20]:
            assert space.parse(str(n)) == n  # stays in the space
            assert space.distance(arch, n) >= 1

    check()


@pytest.mark.parametrize("name", NAMES)
def test_malformed_strings_raise_value_error_naming_the_space(name):
    space = spaces.get(name)
    for bad in ("", "garbage", "[" + str(space.example)):
        with pytest.raises(ValueError) as err:
            space.parse(bad)
        assert name in str(err.value) and "Example" in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_sampling_is_seeded_and_valid(name):
    space = spaces.get(name)
    a = [space.sample(np.random.default_rng(3)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(3)) for _ in range(3)]
    assert a == b
    g = space.graph(a[0])
    assert isinstance(g, nx.DiGraph) and g.number_of_nodes() > 1


def test_sizes_match_the_seed_literature():
    assert len(spaces.get("pooling")) == 36
    assert len(spaces.get("pooling-resnet18")) == 56
    assert len(spaces.get("pooling-resnet50")) == 560
    assert len(spaces.get("nbmacro")) == 3 ** 8
    assert len(spaces.get("nb201")) == 5 ** 6
    assert len({str(a) for a in spaces.get("pooling").enumerate()}) == 36


def test_unknown_space_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid names: pooling"):
        spaces.get("resnet")


@pytest.mark.parametrize("name", ["nb201", "nbmacro"])
def test_params_and_flops_equal_the_built_models_exactly(name):
    # params/flops of NB-201 and NB-Macro come from one additive table (issue 15): every figure
    # must be the one a built model gives (params summed, MACs counted by forward hooks)
    from nasbench_lab.nn.flops import count_macs

    sp = spaces.get(name)
    assert sp.additive_costs
    rng = np.random.default_rng(15)
    archs = [sp.sample(rng) for _ in range(15)] + [sp.arch((0,) * sp.num_levels), sp.arch((2,) * sp.num_levels)]
    for i, a in enumerate(archs):
        ncls = 100 if i % 5 == 0 else None
        model = sp.model(a) if ncls is None else sp.model(a, ncls)
        want_params = sum(p.numel() for p in model.parameters())
        want_flops = count_macs(model, sp.input_shape)
        assert (sp.params(a, ncls), sp.flops(a, ncls)) == (want_params, want_flops), str(a)
        assert isinstance(sp.params(a), int) and isinstance(sp.flops(str(a)), int)
