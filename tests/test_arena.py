"""The strategy arena: validation, a background Run, resumption, curves, views and the widget."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nasbench_lab import benchmarks, spaces
from nasbench_lab.runs import Run, RunStore
from nasbench_lab.search import Arena, expected_best_of_n, strategies
from nasbench_lab.search.arena import final_regret, regret_curves
from nasbench_lab.search.evaluators import ProxyEvaluator
from nasbench_lab.viz import search as vs
from nasbench_lab.viz.panels import PanelContext, panel_figure

POOL = spaces.get("pooling")



# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs,match", [
    ({"strategies": ["random", "annealing"]}, r"unknown \['annealing'\]; valid names: random, rea, ls"),
    ({"strategies": []}, "at least one"),
    ({"evaluator": "oracle"}, "valid names: benchmark, supernet, proxy, training"),
    ({"budget": 0}, "positive number of queries"),
    ({"budget": -5}, "positive number of queries"),
    ({"budget": 2.5}, "positive number of queries"),
    ({"seeds": []}, "seed list is empty"),
    ({"seeds": 0}, "positive number of seeds"),
    ({"seeds": [1, 1]}, "duplicate"),
    ({"dataset": "cifar100"}, "no benchmark column 'cifar100'.*cifar10"),
    ({"strategies": ["hyperband"]}, "needs an evaluator with fidelities"),
    ({"strategy_options": {"bo": {}}}, "not in the arena's strategies"),
    ({"strategy_options": {"rea": {"pop": 3}}}, "unknown options"),
])
def test_arena_rejects_bad_input_with_a_clear_message(kwargs, match):
    base = {"space": "pooling", "dataset": "cifar10", "strategies": ["random", "rea"], "seeds": 2, "budget": 5}
    with pytest.raises(ValueError, match=match):
        Arena(**{**base, **kwargs})
    with pytest.raises(ValueError, match="valid names: pooling"):
        Arena(space="nasnet")


# ----------------------------------------------------------------------------- a run
def test_arena_through_a_run_records_budget_queries_per_stream(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    arena = Arena("pooling", "cifar10", "random,rea,mcts", seeds=[3, 4], budget=12,
                  strategy_options={"rea": {"population_size": 6, "sample_size": 3}})
    run = Run(arena, store=store, snapshot_every=9)
    summary = run.start().result(timeout=120)
    assert run.status == "finished" and arena.step_count == 3 * 2 * 12
    df = arena.results()
    assert list(df.columns) == ["strategy", "seed", "query", "arch", "acc", "fidelity", "cost_s", "sim_time",
                                "best_so_far", "truth", "incumbent", "incumbent_truth", "regret"]
    sizes = df.groupby(["strategy", "seed"]).size()
    assert len(sizes) == 6 and (sizes == 12).all()
    # round robin: every stream's first query comes before anyone's second
    assert (df["query"].iloc[:6] == 1).all() and (df["query"].iloc[6:12] == 2).all()
    bm = benchmarks.get("pooling", "cifar10")
    for _, sub in df.groupby(["strategy", "seed"]):
        assert list(sub["query"]) == list(range(1, 13))
        assert (np.diff(sub["best_so_far"]) >= 0).all() and (np.diff(sub["sim_time"]) > 0).all()
        assert np.allclose(sub["best_so_far"], np.maximum.accumulate(sub["acc"]))
        assert np.allclose(sub["regret"], bm.optimum[1] - sub["best_so_far"])
        assert np.allclose(sub["sim_time"], np.cumsum([bm.cost(a) for a in sub["arch"]]))
    # the store has every step and the snapshots; the summary is the regret table
    assert len(store.metrics(run.run_id)) == 72
    assert store.snapshots(run.run_id)[-1]["data"]["panel"] == "nasbench_lab.viz.search:arena_panel"
    table = pd.DataFrame(summary["regret"])
    assert list(table["strategy"]) == ["random", "rea", "mcts"] and (table["queries"] == 12).all()
    last = df[df["query"] == 12].groupby("strategy", sort=False)["regret"]
    assert np.allclose(table["regret_mean"], last.mean().to_numpy())
    assert np.allclose(table["regret_sem"], last.sem().to_numpy())
    assert np.isnan(table["p_vs_random"].iloc[0]) and table["p_vs_random"].iloc[1:].between(0, 1).all()


def test_arena_resumes_from_a_checkpoint_identically(tmp_path):
    kw = dict(space="pooling", dataset="cifar10", strategies=["random", "rea", "ls", "reinforce", "mcts"],
              seeds=2, budget=10, strategy_options={"rea": {"population_size": 4, "sample_size": 2}})
    straight = Arena(**kw).run().results()
    run = Run(Arena(**kw), store=False, checkpoint_dir=tmp_path)
    run.step(37)
    path = run.checkpoint()
    run.stop()
    resumed = Run.resume(path, store=False)
    assert resumed.job.step_count == 37
    resumed.start().result(timeout=120)
    pd.testing.assert_frame_equal(resumed.job.results(), straight)


def test_hyperband_in_the_arena_with_simulated_fidelities():
    arena = Arena("pooling", "cifar10", ["hyperband", "random"], seeds=2, budget=15,
                  evaluator_options={"fidelities": [20, 60, 200]}).run()
    df = arena.results()
    hb = df[df["strategy"] == "hyperband"]
    assert set(hb["fidelity"]) <= {20.0, 60.0, 200.0} and hb["fidelity"].iloc[0] == 20.0
    assert (df[df["strategy"] == "random"]["fidelity"] == 200.0).all()
    # regret is measured on the truth of the incumbent, never on a low-fidelity number
    assert np.allclose(hb["regret"], arena.optimum - hb["incumbent_truth"])


def test_proxy_arena_measures_regret_on_the_truth_and_its_config_rebuilds_it():
    ev = ProxyEvaluator("pooling", "snip", data=None, batch_size=4)
    arena = Arena("pooling", "cifar10", ["random", "ls"], seeds=1, budget=4, evaluator=ev)
    cfg = arena.config()
    assert json.loads(json.dumps(cfg)) == cfg  # plain data, stored with the run
    assert cfg["evaluator"] == "proxy" and cfg["evaluator_options"]["proxy_name"] == "snip"
    again = Arena.from_config(cfg)
    assert again.evaluator.proxy_name == "snip" and again.evaluator.batch[0].shape[0] == 4
    df = arena.run().results()
    bm = benchmarks.get("pooling", "cifar10")
    assert (df["acc"] != df["truth"]).all()  # the search sees snip scores...
    assert np.allclose(df["truth"], [bm.query(a) for a in df["arch"]])
    assert np.allclose(df["regret"], bm.optimum[1] - df["incumbent_truth"])  # ...regret is on the real accuracy
    for _, sub in df.groupby("strategy"):
        best = sub["acc"].cummax()
        assert np.allclose(sub["incumbent_truth"], [bm.query(sub["arch"].iloc[int(np.argmax(sub["acc"].iloc[:i + 1]))])
                                                    for i in range(len(sub))])
        assert np.allclose(sub["best_so_far"], best)


# ----------------------------------------------------------------------------- curves and reference
def test_curves_bands_and_the_exact_random_reference():
    arena = Arena("pooling", "cifar10", ["random", "ls"], seeds=4, budget=8).run()
    df = arena.results()
    cur = arena.curves()
    r = cur[cur["strategy"] == "random"]
    mat = np.array([df[(df["strategy"] == "random") & (df["seed"] == s)]["regret"] for s in range(4)])
    assert np.allclose(r["mean"], mat.mean(0)) and (r["n"] == 4).all()
    half = 3.182446305284263 * mat.std(0, ddof=1) / 2  # t(0.975, 3) * sd / sqrt(4)
    assert np.allclose(r["hi"] - r["mean"], half) and np.allclose(r["mean"] - r["lo"], half)
    ref = arena.reference()
    values = benchmarks.get("pooling", "cifar10").table["acc"].to_numpy()
    assert np.allclose(ref["regret"], values.max() - expected_best_of_n(values, np.arange(1, 9)))
    assert (np.diff(ref["regret"]) <= 0).all()
    by_time = arena.curves(by="time", points=20)
    assert len(by_time) == 40 and (np.diff(by_time[by_time["strategy"] == "ls"]["x"]) > 0).all()
    assert len(arena.reference(by="time", points=20)) == 20
    # the same numbers from the per-stream series the live widget collects
    series = {(s.strategy_name, s.seed): (s.times, s.regrets) for s in arena.streams}
    pd.testing.assert_frame_equal(regret_curves(series, ["random", "ls"]), cur)
    fin = final_regret(series, ["random", "ls"])
    assert np.allclose(fin["regret_mean"], arena.regret_table()["regret_mean"])


# ----------------------------------------------------------------------------- views
def test_views_build_from_real_snapshots():
    arena = Arena("pooling", "cifar10", ["random", "rea", "reinforce", "bo", "mcts"], seeds=2, budget=14,
                  strategy_options={"rea": {"population_size": 5, "sample_size": 2},
                                    "bo": {"n_init": 5, "refit_every": 3, "epochs": 30}}).run()
    fig = vs.regret_figure(arena.curves(), arena.reference())
    assert len(fig.data) == 2 * 5 + 1 and fig.data[-1].meta["role"] == "reference"
    mean = arena.curves().query("strategy == 'random'")["mean"]
    assert np.allclose(fig.data[1].y, np.maximum(mean, vs.LOG_FLOOR))  # zero regret sits on the log floor
    assert np.allclose(vs.regret_figure(arena.curves(), log_y=False).data[1].y, mean)
    snap = arena.snapshot()
    ctx = PanelContext(space=POOL)
    assert len(panel_figure(snap, ctx).data) == 11
    streams = snap["streams"]
    pop = panel_figure(streams["rea"], ctx)
    assert len(pop.data[0].x) == 5 and list(pop.data[0].marker.color) == streams["rea"]["acc"]
    anim = vs.population_figure([streams["rea"], streams["rea"]], POOL)
    assert len(anim.frames) == 2
    pred = panel_figure(streams["bo"], ctx)
    assert len(pred.data[1].x) == len(streams["bo"]["observed"]) == 9
    heat = panel_figure(streams["reinforce"], ctx)
    z = np.array(heat.data[0].z)
    assert z.shape == (sum(len(o) for o in streams["reinforce"]["options"]), len(streams["reinforce"]["history"]))
    tree = panel_figure(streams["mcts"], ctx)
    assert tree.data[0].values[0] == 14
    df = pd.DataFrame({"arch": ["a", "b", "c", "d"], "truth": [1.0, 2.0, 3.0, 4.0], "p1": [10, 20, 30, 40],
                       "p2": [4, 3, 2, 1]})
    prox = vs.proxy_figure(df)
    assert len(prox.data) == 2 and "ρ=1.00" in prox.layout.annotations[0].text
    assert "ρ=-1.00" in prox.layout.annotations[1].text


# ----------------------------------------------------------------------------- widget
def test_strategy_arena_widget_draws_the_arena_numbers():
    from nasbench_lab.widgets.arena import StrategyArena

    w = StrategyArena(space="pooling", dataset="cifar10", strategies=["random", "ls"], seeds=3, budget=10)
    assert w.refresh() == 0  # nothing started yet
    w.strategies.value = ()
    assert not w.start() and "at least one" in w.message.value
    w.strategies.value = ("random", "ls")
    assert w.start()
    assert w.run.wait(120) == "finished"
    w.refresh()
    assert w.progress.value == 60
    expect = w.arena.curves()
    means = {t.meta["strategy"]: list(t.y) for t in w.figure.data if t.meta["role"] == "mean"}
    for name in ("random", "ls"):
        assert np.allclose(means[name], np.maximum(expect.query("strategy == @name")["mean"], vs.LOG_FLOOR))
    ref = [t for t in w.figure.data if t.meta["role"] == "reference"][0]
    assert np.allclose(ref.y, w.arena.reference()["regret"])
    assert w.figure.layout.yaxis.type == "log"
    assert "random" in w.table.value and "±" in w.table.value
    w.axis.value = "time"
    assert w.figure.layout.xaxis.type == "log" and len(w.figure.data[1].x) == 100
    w.close()


def test_strategy_registry_is_what_the_arena_offers():
    assert strategies.names() == ["random", "rea", "ls", "reinforce", "bo", "boltzmann", "mcts", "hyperband", "nsga2"]
