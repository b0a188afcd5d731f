"""FLOP (multiply-accumulate) counts for whole benchmark tables.

Building and running a model per architecture is far too slow for 15,625 NAS-Bench-201 cells; the
space's shared cost model (:mod:`nasbench_lab.spaces.cost`) answers instead: an additive per-level
table for separable product spaces (NB-201 edges at a fixed stage width/resolution, NB-Macro layers
at fixed channels/resolution, derived from ``1 + sum_level (options - 1)`` ``space.flops`` calls),
the enumeration for the small constrained pooling spaces. Tests check it against ``space.flops``.
"""

from __future__ import annotations

from nasbench_lab.spaces.cost import AdditiveCost, CostModel, DirectCost, cost_model

#: the names this module had before the cost models moved to ``spaces.cost``
AdditiveFlops = AdditiveCost
DirectFlops = DirectCost


def flop_model(space_name: str) -> CostModel:
    """The FLOP counter used for a space's benchmark costs (``cost(genes)``, ``many(G)``)."""
    return cost_model(space_name, "flops")
