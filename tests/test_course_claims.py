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

from nasbench_lab import benchmarks, spaces
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


# ----------------------------------------------------------------------------- 01: search spaces
def nb201_output_cut(cell: str) -> bool:
    """True when every path from the input (node 0) to the output (node 3) crosses a none edge."""
    nodes = [[t.split("~") for t in part.strip("|").split("|")] for part in cell.split("+")]
    reach = {0}
    for i, edges in enumerate(nodes, start=1):
        if any(op != "none" and int(j) in reach for op, j in edges):
            reach.add(i)
    return 3 not in reach


def test_nb201_output_cut_by_hand():
    assert nb201_output_cut("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert not nb201_output_cut("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert nb201_output_cut("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")  # node 2 unreached
    assert not nb201_output_cut("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")


def test_exercises_01_are_what_the_tables_say():
    text = notebook_text("01_search_spaces.ipynb")
    nb = benchmarks.get("nb201", "cifar10")
    best = nb.table["acc"].max()
    near = nb.table[nb.table["acc"] >= best - 1]
    assert f"{len(near):,} of {len(nb):,} cells, {near['iso'].nunique():,} distinct networks" in text
    pool = benchmarks.get("pooling", "cifar10").frame().sort_values("acc", ascending=False)
    top, ref = pool.iloc[0], pool.set_index("arch").loc["[4,3,3]"]
    layout = spaces.get("pooling").layout(spaces.get("pooling").parse(top["arch"]))
    assert f"`{top['arch']}` ({top['acc']:.2f} %): {layout[0]} of its {sum(layout)}" in text
    assert f"{layout[1]} at 16×16 and {layout[2]} at 8×8" in text and layout[0] > layout[1]
    assert f"`[4,3,3]` ({ref['acc']:.2f} %, rank {int(ref['rank'])} of {len(pool)}" in text
    # exercise 3: every cell whose output is cut off scores chance
    cut = nb.frame()[nb.frame()["arch"].map(nb201_output_cut)]
    assert len(cut) > 100 and np.allclose(cut["acc"], 10.0, atol=0.05)
    assert "gives every such cell 10.0 % (chance)" in text
    # exercise 4: width at fixed depth against depth at fixed width
    mf = benchmarks.get("nbmacro", "cifar10").frame()
    m = mf.groupby([mf["arch"].str.count("0"), mf["arch"].str.count("2")])["acc"].mean()
    assert (f"gains {m[2, 6] - m[2, 0]:.2f} points ({m[2, 0]:.2f} → {m[2, 6]:.2f} %, mean over the table), while "
            f"removing 2 identities at 0 MB6_K5 layers gains {m[0, 0] - m[2, 0]:.2f} points ({m[2, 0]:.2f} → "
            f"{m[0, 0]:.2f} %) and removing 5 (from 7 to 2) gains {m[2, 0] - m[7, 0]:.2f}") in text


# ----------------------------------------------------------------------------- 00: one τ, one noise level
def test_top10_tau_includes_boundary_ties_and_ignores_row_order():
    from scipy.stats import kendalltau

    from nasbench_lab.metrics import top_k_tau

    # truth with a tie across the k-th place: k = 2 takes all three of {9, 8, 8}
    truth = np.array([9.0, 8.0, 8.0, 1.0, 0.0])
    est = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    by_hand = kendalltau([1.0, 3.0, 2.0], [9.0, 8.0, 8.0]).statistic
    for perm in ([0, 1, 2, 3, 4], [2, 1, 0, 4, 3], [4, 3, 2, 1, 0]):
        assert top_k_tau(est[perm], truth[perm], k=2) == pytest.approx(by_hand)
    # on the shipped digits table (7 architectures share places 8-14) the value no longer moves
    truth = benchmarks.get("pooling", "digits").table["acc"].to_numpy()
    est = np.random.default_rng(0).normal(size=len(truth))
    values = {round(top_k_tau(est[p], truth[p]), 12) for p in (np.random.default_rng(s).permutation(len(truth))
                                                               for s in range(20))}
    assert len(values) == 1


def test_00_ground_truth_noise_claims_agree_with_the_table_and_the_readme():
    from scipy.stats import kendalltau

    readme = " ".join((NOTEBOOKS.parent / "README.md").read_text().split())
    assert "Its two seeds agree only to Kendall τ = 0.25" in readme
    code = notebook_text("00_start_here.ipynb", "code")
    assert "real seeds of the table agreed to 0.25, README" in code
    # the notebook's simulation (two seeds drawn from the table's std) must cover the measured 0.25
    t = benchmarks.get("pooling", "digits").table
    acc, sd = t["acc"].to_numpy(), t["std"].fillna(0).to_numpy()
    rng = np.random.default_rng(0)
    pairs = [kendalltau(acc + rng.normal(0, sd), acc + rng.normal(0, sd)).statistic for _ in range(200)]
    assert abs(np.mean(pairs) - 0.25) < 2 * np.std(pairs)


def test_00_exercise_1_quotes_the_thesis_table():
    from nasbench_lab.reproduce.tables import TABLE_5_1_POOLING

    v = TABLE_5_1_POOLING.thesis_values
    text = notebook_text("00_start_here.ipynb")
    assert f"uniform τ = {v['Uniform']['kendall_tau']:.2f}, strict fairness {v['Strict fairness']['kendall_tau']:.2f}" in text


# ----------------------------------------------------------------------------- 03: the thesis on real CIFAR-10
REPRO = NOTEBOOKS / "results" / "reproduce"


def _rankings(folder: str) -> dict:
    import pandas as pd

    return {f.name: pd.read_csv(f) for f in sorted((REPRO / folder / "runs").glob("*.ranking.csv"))}


def test_03_budget_paragraph_is_what_the_shipped_rankings_show():
    """The 'Budget' paragraph of section 6: recomputed from the ranking of every shipped run."""
    from scipy.stats import kendalltau

    text = notebook_text("03_one_shot_samplers.ipynb")
    t43 = _rankings("table-4.3-top10-cpu")
    pooling = {**t43, **_rankings("table-5.1-pooling-cpu")}
    assert len(pooling) >= 8
    reversed_, negative, exceptions = 0, 0, []
    for name, d in pooling.items():
        top = d.sort_values("truth", ascending=False).head(10)
        first = top.arch.map(lambda a: json.loads(a)[0])
        assert top.arch.iloc[0] == "[7,1,2]" and round(kendalltau(top.truth, first)[0], 2) == 0.66
        reversed_ += kendalltau(top.estimate, first)[0] < 0  # orders the ten by depth the other way
        if name in t43:
            tau10 = kendalltau(top.estimate, top.truth)[0]
            negative += tau10 < 0
            if tau10 > 0:
                exceptions.append((name, tau10))
    assert "Kendall τ = +0.66 between accuracy and the blocks at 32×32: the best is `[7,1,2]`" in text
    assert (f"{reversed_} of the {len(pooling)} shipped pooling supernets order those ten the other way round, which "
            f"is why {negative} of the {len(t43)} runs of Table 4.3 have a negative") in text
    assert [(n.split("-s")[0], round(t, 2)) for n, t in exceptions] == [("repro-pooling-cifar10-boltzmann", 0.54)]
    assert "the exception, Boltzmann Sampling seed 2, reaches +0.54" in text and "-s2-" in exceptions[0][0]
    nb201 = _rankings("table-5.3-nb201-cpu")
    assert len(nb201) == 9
    heavy, top10 = [], []
    for name, d in nb201.items():
        conv = d.arch.map(lambda a: sum(t.startswith("nor_conv") for t in a.split("|") if "~" in t))
        by = d.assign(conv=conv).groupby("conv")[["estimate", "truth"]].mean()
        # "falls with each convolution edge ... while the 200-epoch accuracy rises with it"
        assert kendalltau(by.index, by.estimate)[0] < -0.6 and kendalltau(by.index, by.truth)[0] > 0.6, name
        # "among the 103 sampled cells with at least 3 convolution edges tau is near 0 (-0.12 to -0.03 in
        # the 9 runs), and within the true top-10 it is positive in every run (+0.13 to +0.54)"
        heavy.append((int((conv >= 3).sum()), kendalltau(d.estimate[conv >= 3], d.truth[conv >= 3])[0]))
        # the run's own top-10 tau (ties at the 10th place included, as the ranking code counts them)
        top10.append(json.loads((REPRO / "table-5.3-nb201-cpu" / "runs" / name.replace(".ranking.csv", ".json"))
                                .read_text())["kendall_tau_top10"])
    assert "the supernet's estimate falls with each convolution edge a cell has while the 200-epoch" in text
    assert {n for n, _ in heavy} == {103}
    lo, hi = min(t for _, t in heavy), max(t for _, t in heavy)
    assert f"(−{abs(lo):.2f} to −{abs(hi):.2f} in the 9 runs)" in text and hi < 0
    assert min(top10) > 0 and f"positive in every run (+{min(top10):.2f} to +{max(top10):.2f})" in text
    # the standalone check at the same budget (scripts/budget-check): its numbers, and its order
    import pandas as pd

    bc = pd.read_csv(REPRO / "pooling-budget-check.csv").groupby("arch")[["val_acc", "truth"]].mean()
    quoted = "`[2,5,3]` reaches {:.1f} %, `[3,4,3]` {:.1f} % and the true best `[7,1,2]` {:.1f} %".format(
        *bc.loc[["[2,5,3]", "[3,4,3]", "[7,1,2]"], "val_acc"])
    assert quoted in text
    assert kendalltau(bc.val_acc, bc.truth)[0] == -1.0  # "the reverse of Table 2.1's"


# ----------------------------------------------------------------------------- 04: the shipped DARTS runs
def test_04_collapse_text_is_what_the_shipped_runs_show():
    import pandas as pd

    runs = {m: pd.read_csv(NOTEBOOKS / "results" / f"darts_nb201_digits_{m}.csv") for m in ("darts", "gdas", "darts-minus")}

    def free(cell: str) -> int:
        return sum(t.split("~")[0] in ("skip_connect", "avg_pool_3x3", "none") for t in cell.split("|") if "~" in t)

    text = notebook_text("04_darts_and_collapse.ipynb")
    assert all((r["skip_count"] < 3).all() for r in runs.values()) and "No run reaches 3 skip edges" in text
    d = runs["darts"]
    f = d["arch"].map(free)
    cut = int(np.isclose(d["table_acc"], 10.0).sum())
    assert cut == int(d["arch"].map(nb201_output_cut).sum())
    assert f"DARTS ends with {f.min()} to {f.max()} of 6 edges parameter-free and {cut} of its {len(d)} cells cut off" in text
    g = runs["gdas"]
    assert f"GDAS ends with all 6 edges parameter-free in {int((g['arch'].map(free) == 6).sum())} of {len(g)} seeds" in text
    m = runs["darts-minus"]
    fm = m["arch"].map(free)
    assert f"DARTS- keeps skip down ({int(m['skip_count'].sum())} skip edges) and ends with {fm.min()} to {fm.max()} of 6" in text
    pools = sum(t.startswith("avg_pool_3x3") for a in m["arch"] for t in a.split("|") if "~" in t)
    assert pools >= 0.8 * fm.sum() and "almost all `avg_pool_3x3`" in text


# ----------------------------------------------------------------------------- 05: multi-objective
def test_05_exercises_params_flops_and_the_flops_band():
    from scipy.stats import spearmanr

    from nasbench_lab.spaces.budget import Budget

    text = notebook_text("05_multi_objective.ipynb")
    sp = spaces.get("nb201")
    archs = list(sp.enumerate())
    rho = spearmanr([sp.params(a) for a in archs], [sp.flops(a) for a in archs]).statistic
    assert f"Spearman ρ = {rho:.2f} over all {len(archs):,} cells" in text
    mb = spaces.get("mobilenet")
    b330, b100 = (Budget.band("flops", m * 1e6).bind(mb) for m in (330, 100))
    a330, a100 = b330.measure(2000)["acceptance"], b100.measure(2000)["acceptance"]
    # the band's size is estimated from the acceptance of the proposals: stated to one digit
    assert f"(about {b100.fraction:.0e} instead of {b330.fraction:.0e};" in text and b100.fraction < b330.fraction
    assert "(0.64 instead of 0.80)" in text and abs(a100 - 0.64) < 0.03 and abs(a330 - 0.80) < 0.03


def test_05_exercise_2_nsga2_separates_from_random_only_at_the_larger_budget():
    from nasbench_lab.search.multiobjective import ParetoArena

    q = parameters("05_multi_objective.ipynb")
    text = notebook_text("05_multi_objective.ipynb")
    p = {}
    for budget in (50, q["QUERIES"]):
        hv = ParetoArena("nb201", "cifar10", ["random", "nsga2"], seeds=q["SEEDS"], budget=budget,
                         objectives="acc,flops").run().hv_table().set_index("strategy")
        p[budget] = hv.loc["nsga2", "p_vs_random"]
    assert p[50] > 0.05 > p[q["QUERIES"]]
    assert (f"({q['SEEDS']} seeds, `acc,flops`: p = {p[50]:.2f} at 50 queries against {p[q['QUERIES']]:.3f} at "
            f"{q['QUERIES']})") in text


# ----------------------------------------------------------------------------- 06: proxies
def test_06_exercises_match_the_shipped_proxy_tables_and_nbmacro():
    import pandas as pd
    from scipy.stats import spearmanr

    text = notebook_text("06_proxies_and_predictors.ipynb")
    big = pd.read_csv(NOTEBOOKS / "results" / "proxies_nb201_cifar10_1000.csv")
    rho = {c: spearmanr(big[c], big["truth"]).statistic for c in ("grasp", "fisher", "synflow", "jacov", "params")}
    assert max(rho["grasp"], rho["fisher"]) < min(rho["synflow"], rho["jacov"])
    assert (f"ρ = {rho['grasp']:.2f} and {rho['fisher']:.2f} against {rho['synflow']:.2f} and {rho['jacov']:.2f}"
            in text)
    ref = pd.read_csv(NOTEBOOKS / "results" / "proxies_nb201_cifar10_1000_fisher_reference.csv")
    assert (f"fisher is {rho['fisher']:.2f} on this network, {spearmanr(ref['fisher'], ref['truth']).statistic:.2f} "
            "on the reference one") in text
    sp = spaces.get("nbmacro")
    f = benchmarks.get("nbmacro", "cifar10").frame()
    archs = [sp.parse(a) for a in f["arch"]]
    p = spearmanr([sp.params(a) for a in archs], f["acc"]).statistic
    fl = spearmanr([sp.flops(a) for a in archs], f["acc"]).statistic
    assert (f"over all {len(f):,} NAS-Bench-Macro architectures the parameter count ranks with Spearman ρ = {p:.2f}, "
            f"the FLOPs with {fl:.2f}") in text
    assert f"against ρ = {rho['params']:.2f} for params on the {len(big):,} NB-201 cells" in text and p < rho["params"]


def test_06_exercise_2_synflow_ignores_the_images():
    import torch

    from nasbench_lab import proxies

    cell = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g))
    b = (torch.randn(8, 3, 32, 32, generator=g) * 5, torch.randint(0, 10, (8,), generator=g))
    assert proxies.score("synflow", "nb201", cell, batch=a) == pytest.approx(proxies.score("synflow", "nb201", cell, batch=b))
    assert proxies.score("jacov", "nb201", cell, batch=a) != pytest.approx(proxies.score("jacov", "nb201", cell, batch=b))
