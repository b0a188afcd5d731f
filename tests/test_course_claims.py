"""The course's stated numbers, recomputed from the data they talk about.

Each test recomputes one claim or exercise answer of a notebook (tables only, no training) and
checks that the notebook's text states that number, so a change to the data that breaks a claim
fails here instead of misleading a class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasbench_lab import spaces
from nasbench_lab.search import Arena, strategies
from nasbench_lab.search.strategies.simple import default_rea_sizes

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebook_text(name: str, kind: str = "markdown") -> str:
    """All cell sources of one kind of a notebook, as one string (whitespace collapsed)."""
    nb = json.loads((NOTEBOOKS / name).read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind)
    return " ".join(text.split())


def parameters(name: str, budget: str = "lecture") -> dict:
    """The notebook's BUDGETS[budget], read by executing its parameters cell (no kernel needed)."""
    nb = json.loads((NOTEBOOKS / name).read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    scope: dict = {}
    exec("".join(cell["source"]).replace("import os", "import os as os"), scope)  # noqa: S102 - our own file
    return scope["BUDGETS"][budget]


# ----------------------------------------------------------------------------- 02: regularized evolution
def test_rea_default_population_is_a_fraction_of_the_budget():
    # Real et al. 2019 §4.1: P = 100, S = 25 for C = 20,000 cycles; without a budget, the same
    assert default_rea_sizes(None) == (100, 25)
    # scaled: P = clip(budget // 10, 5, 100), S = max(2, ceil(P / 4)), worked by hand
    assert default_rea_sizes(100) == (10, 3)
    assert default_rea_sizes(25) == (5, 2)
    assert default_rea_sizes(300) == (30, 8)
    assert default_rea_sizes(20_000) == (100, 25)
    assert default_rea_sizes(100, population_size=100) == (100, 25)  # given values win
    s = strategies.get("rea", "nb201", budget=40)
    assert (s.population_size, s.sample_size) == (5, 2)
    with pytest.raises(ValueError, match="budget"):
        strategies.get("rea", "nb201", budget=0)


@pytest.fixture(scope="module")
def rea_arena() -> Arena:
    q = parameters("02_blackbox_search.ipynb")
    return Arena("nb201", "cifar10", ["random", "rea"], seeds=q["SEEDS"], budget=q["QUERIES"]).run()


def test_rea_at_the_notebook_budget_evolves_and_differs_from_random(rea_arena):
    q = parameters("02_blackbox_search.ipynb")
    df = rea_arena.results()
    rea = next(s.strategy for s in rea_arena.streams if s.strategy_name == "rea")
    assert rea.population_size == q["QUERIES"] // 10 < q["QUERIES"]
    # children of mutation: queries after the first P are neighbours of an earlier query
    space = spaces.get("nb201")
    asked = [space.parse(a) for a in df[(df.strategy == "rea") & (df.seed == rea_arena.seeds[0])]["arch"]]
    later = asked[rea.population_size:]
    assert later and all(any(a in set(space.neighbours(b)) for b in asked[:i + rea.population_size])
                         for i, a in enumerate(later))
    r = df[df.strategy == "random"].sort_values(["seed", "query"])["acc"].to_numpy()
    e = df[df.strategy == "rea"].sort_values(["seed", "query"])["acc"].to_numpy()
    assert not np.array_equal(r, e)


def test_exercise_02_1_population_as_large_as_the_budget_is_random_search():
    # the exercise's answer: with population_size = QUERIES, REA asks exactly what random search asks
    q = parameters("02_blackbox_search.ipynb")
    a = Arena("nb201", "cifar10", ["random", "rea"], seeds=[0, 1], budget=q["QUERIES"],
              strategy_options={"rea": {"population_size": q["QUERIES"]}}).run().results()
    assert np.array_equal(a[a.strategy == "random"]["arch"].to_numpy(), a[a.strategy == "rea"]["arch"].to_numpy())
    text = notebook_text("02_blackbox_search.ipynb")
    assert f"population_size={q['QUERIES']}" in text and "exactly random search" in text
