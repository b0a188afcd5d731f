"""Evaluators, the one-call search, and the ``nasbench-lab search`` CLI functions."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from nasbench_lab import benchmarks, spaces
from nasbench_lab.search import EvalResult, evaluators, search
from nasbench_lab.search import cli as search_cli
from nasbench_lab.search.evaluators import BenchmarkEvaluator, SupernetEvaluator, TrainingEvaluator

POOL = spaces.get("pooling")



# ----------------------------------------------------------------------------- benchmark evaluator
def test_benchmark_evaluator_returns_the_table_and_the_simulated_cost():
    bm = benchmarks.get("pooling", "cifar10")
    ev = evaluators.get("benchmark", "pooling", "cifar10")
    assert isinstance(ev, BenchmarkEvaluator) and ev.fidelities is None and ev.deterministic
    for arch in POOL.enumerate()[:10]:
        r = ev.evaluate(arch)
        assert r == EvalResult(bm.query(arch), bm.cost(arch), None)
        assert ev.evaluate(str(arch)) == r  # strings are parsed
        assert ev.truth(arch) == bm.query(arch)
    assert ev.optimum == bm.optimum[1] == max(bm.query(a) for a in POOL.enumerate())
    assert sorted(ev.values()) == sorted(bm.query(a) for a in POOL.enumerate())
    # the documented cost model: epochs * flops / reference flops * seconds per reference epoch
    a = POOL.parse("[1,1,8]")
    assert ev.evaluate(a).cost_s == pytest.approx(bm.epochs * bm.flops(a) / bm.reference_flops * bm.reference_epoch_seconds)
    with pytest.raises(ValueError, match="single fidelity"):
        ev.evaluate(a, fidelity=10)
    with pytest.raises(ValueError, match="pooling"):
        ev.evaluate("[4,4,4]")


def test_simulated_fidelities_are_cheaper_noisier_and_exact_at_the_top():
    ev = evaluators.get("benchmark", "pooling", "cifar10", fidelities=[200, 20, 60])
    assert ev.fidelities == (20.0, 60.0, 200.0)
    bm = ev.benchmark
    a = POOL.parse("[4,3,3]")
    top = ev.evaluate(a, 200)
    assert top.acc == bm.query(a) and top.fidelity == 200
    low = ev.evaluate(a, 20)
    assert low == ev.evaluate(a, 20)  # a fixed draw per (arch, fidelity)
    assert low.cost_s == pytest.approx(top.cost_s * 20 / 200)
    gaps = np.array([bm.query(b) - ev.evaluate(b, 20).acc for b in POOL.enumerate()])
    # acc_f = acc - gap * r + noise * r * z with r = 0.9: mean gap 9 points, spread ~2.7
    assert 7 < gaps.mean() < 11 and 1.5 < gaps.std() < 4
    with pytest.raises(ValueError, match="not one of"):
        ev.evaluate(a, 100)


def test_evaluator_registry_errors():
    with pytest.raises(ValueError, match="valid names: benchmark, supernet, proxy, training"):
        evaluators.get("oracle", "pooling", "cifar10")
    with pytest.raises(ValueError, match="cifar10"):  # lists what exists
        evaluators.get("benchmark", "pooling", "cifar100")
    with pytest.raises(ValueError, match="trainer="):
        evaluators.get("supernet")
    with pytest.raises(ValueError, match="epochs"):
        TrainingEvaluator(POOL, data="digits", epochs=0)


def test_training_evaluator_trains_for_real_with_epochs_as_fidelity():
    ev = evaluators.get("training", "pooling", data="digits", epochs=(0.05, 0.1), batch_size=32)
    assert ev.fidelities == (0.05, 0.1) and ev.benchmark is None
    r = ev.evaluate("[4,3,3]", 0.05)
    assert 0.0 <= r.acc <= 100.0 and r.cost_s > 0 and r.fidelity == 0.05
    assert ev.evaluate("[4,3,3]", 0.05) is r  # cached: no second training
    assert math.isnan(ev.truth(POOL.parse("[4,3,3]")))
    with_truth = evaluators.get("training", "pooling", "cifar10", data="digits", epochs=0.05)
    assert with_truth.truth(POOL.parse("[4,3,3]")) == benchmarks.get("pooling", "cifar10").query("[4,3,3]")


def test_supernet_evaluator_uses_inherited_weights():
    from nasbench_lab.training.trainer import Trainer

    trainer = Trainer(space="pooling", dataset="digits", steps=2, batch_size=16, seed=0, device="cpu",
                      rank_at_end=False, recalibration_batches=1)
    trainer.step()
    ev = evaluators.get("supernet", trainer=trainer, max_images=32)
    assert isinstance(ev, SupernetEvaluator)
    r = ev.evaluate("[4,3,3]")
    assert r.acc == pytest.approx(trainer.evaluate("[4,3,3]", max_images=32))
    assert ev.evaluate("[4,3,3]") is r
    assert ev.benchmark is not None and ev.benchmark.dataset == "digits"  # the packaged digits ground truth


# ----------------------------------------------------------------------------- search()
def test_search_runs_one_strategy_and_finds_the_pooling_optimum():
    s = search("ls", "pooling", "cifar10", budget=36, seed=0)
    bm = benchmarks.get("pooling", "cifar10")
    assert s.n_told == 36 and s.best_acc == bm.optimum[1]  # local search covers the 36 and never repeats
    r = search("rea", "pooling", "cifar10", budget=10, seed=1, population_size=5, sample_size=2)
    assert r.population_size == 5 and r.n_told == 10


# ----------------------------------------------------------------------------- CLI
def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    search_cli.add_arguments(p)
    return p.parse_args(list(argv))


def test_cli_json_records_one_per_strategy_and_seed(capsys):
    rc = search_cli.main(_args("--space", "pooling", "--dataset", "cifar10", "--strategy", "random,rea",
                               "--strategy", "mcts", "--budget", "8", "--seeds", "3", "--json"))
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [(r["strategy"], r["seed"]) for r in lines] == [(s, k) for s in ("random", "rea", "mcts") for k in range(3)]
    opt = benchmarks.get("pooling", "cifar10").optimum[1]
    for r in lines:
        assert len(r["best"]) == 8 and all(b2 >= b1 for b1, b2 in zip(r["best"], r["best"][1:]))
        assert r["regret"][-1] == pytest.approx(opt - r["best"][-1])


def test_cli_table_and_errors(capsys):
    assert search_cli.main(_args("--space", "pooling", "--strategy", "random,ls", "--budget", "5", "--seeds", "2")) == 0
    out = capsys.readouterr().out
    assert "random search expects regret" in out and "ls" in out and "regret_mean" in out
    with pytest.raises(ValueError, match="valid names"):
        search_cli.main(_args("--space", "pooling", "--strategy", "sa", "--budget", "5"))
    with pytest.raises(ValueError, match="--options"):
        search_cli.main(_args("--space", "pooling", "--options", "{bad", "--budget", "5"))
    assert search_cli.main(_args("--space", "pooling", "--strategy", "hyperband", "--fidelities", "20,60,200",
                                 "--budget", "20", "--seeds", "1", "--json")) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert rec["strategy"] == "hyperband" and len(rec["best"]) == 20
