"""Tabular benchmarks: the shipped tables' published facts, lookups, ranks, costs, user tables."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from nasbench_lab import benchmarks, spaces
from nasbench_lab.benchmarks import Benchmark
from nasbench_lab.benchmarks.cost import AdditiveFlops, flop_model

FULL_CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
             "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")


# --------------------------------------------------------------------------- listing and lookup
def test_available_and_datasets():
    have = benchmarks.available()
    assert have[:5] == [("pooling", "cifar10"), ("nbmacro", "cifar10"), ("nb201", "cifar10"),
                        ("nb201", "cifar100"), ("nb201", "imagenet16-120")]
    assert benchmarks.datasets("nb201") == ["cifar10", "cifar100", "imagenet16-120"]
    assert benchmarks.get("nb201").dataset == "cifar10"  # default dataset
    assert benchmarks.get("nb201", "CIFAR100").dataset == "cifar100"
    assert benchmarks.get("pooling") is benchmarks.get("pooling", "cifar10")  # loaded once


def test_unknown_space_or_dataset_lists_what_exists():
    with pytest.raises(ValueError, match="no benchmark for space 'darts'.*nb201/cifar100"):
        benchmarks.get("darts")
    with pytest.raises(ValueError, match="no 'svhn' benchmark for space 'nb201'.*cifar10, cifar100, imagenet16-120"):
        benchmarks.get("nb201", dataset="svhn")
    with pytest.raises(ValueError, match="pooling/cifar10"):
        benchmarks.get("pooling-resnet18")


# --------------------------------------------------------------------------- pooling
def test_pooling_table():
    b = benchmarks.get("pooling")
    assert len(b) == 36 and b.epochs == 200 and b.dataset == "cifar10"
    assert list(b.table.columns[:2]) == ["acc", "std"]
    assert b.query("[7,1,2]") == 92.01 and b.rank("[7,1,2]") == 1
    best, acc = b.optimum
    assert str(best) == "[7,1,2]" and acc == 92.01 and isinstance(acc, float)
    sp = spaces.get("pooling")
    assert b.query(sp.parse("[4,3,3]")) == b.query(" [4, 3, 3] ") == 90.52  # Arch, or any spelling
    assert b.table.at["[4,3,3]", "std"] == 0.15
    # table order is the space's enumeration order
    assert b.archs() == sp.enumerate()
    assert b.iso("[4,3,3]") == "[4,3,3]"
    assert b.regret("[7,1,2]") == 0 and b.regret("[4,3,3]") == pytest.approx(1.49)
    assert "[4,3,3]" in b and "[4,3,4]" not in b and "nonsense" not in b


def test_ranks_share_the_min_on_ties():
    b = benchmarks.get("pooling")
    # 90.96 appears twice (rows [5,2,3] and [6,3,1]); 6 architectures are better
    assert b.rank("[5,2,3]") == b.rank("[6,3,1]") == 7
    assert b.rank("[4,5,1]") == 25  # 89.71, just above [3,2,5] at 89.70
    ranks = sorted(b.rank(a) for a in b.archs())
    assert ranks[:9] == [1, 2, 3, 4, 5, 6, 7, 7, 9] and ranks[-1] == 36
    assert b.rank("[1,1,8]") == 36


def test_frame_is_a_copy_with_arch_and_rank():
    b = benchmarks.get("pooling")
    df = b.frame()
    assert list(df.columns[:2]) == ["arch", "acc"] and "rank" in df.columns and len(df) == 36
    df.loc[0, "acc"] = -1.0
    assert b.query("[1,1,8]") == 87.45
    rec = b.record("[4,3,3]")
    assert rec["arch"] == "[4,3,3]" and rec["n_seeds"] == 3 and isinstance(rec["n_seeds"], int)
    assert rec["rank"] == b.rank("[4,3,3]")


def test_pooling_cost_model():
    b = benchmarks.get("pooling")
    sp = spaces.get("pooling")
    assert b.reference_arch == "[4,3,3]"
    assert b.cost("[4,3,3]") == pytest.approx(b.epochs * b.reference_epoch_seconds)
    for text in ("[1,1,8]", "[8,1,1]"):
        expected = b.epochs * sp.flops(sp.parse(text)) / sp.flops(sp.default()) * b.reference_epoch_seconds
        assert b.cost(text) == pytest.approx(expected)
    assert b.cost("[8,1,1]") > b.cost("[4,3,3]") > b.cost("[1,1,8]")
    costs = b.costs()
    assert costs.index.equals(b.table.index)
    assert costs["[7,1,2]"] == pytest.approx(b.cost("[7,1,2]"))


def test_query_errors():
    b = benchmarks.get("pooling")
    with pytest.raises(ValueError, match="pooling:.*'\\[4,3,3\\]'"):
        b.query("[4,3]")


# --------------------------------------------------------------------------- NAS-Bench-201
def test_nb201_published_facts():
    optima = {"cifar10": 94.37, "cifar100": 73.51, "imagenet16-120": 47.31}
    for ds, best in optima.items():
        b = benchmarks.get("nb201", ds)
        assert len(b) == 15625 and b.epochs == 200
        assert round(b.optimum[1], 2) == best
        assert b.rank(b.optimum[0]) == 1
    b = benchmarks.get("nb201", "cifar10")
    assert round(b.query(FULL_CELL), 2) == 93.76
    assert b.table["iso"].nunique() == 6466
    assert "std" not in b.table.columns


def test_nb201_keys_are_canonical_strings():
    b = benchmarks.get("nb201")
    sp = spaces.get("nb201")
    rng = np.random.default_rng(0)
    for k in b.table.index[rng.choice(len(b), 200, replace=False)]:
        assert str(sp.parse(k)) == k
    a = sp.parse(FULL_CELL)
    assert b.query(a) == b.query(FULL_CELL)
    assert b.iso(a) == b.table.at[FULL_CELL, "iso"]


def test_nb201_iso_classes_share_accuracy_loosely():
    # isomorphic cells are the same network: their records (independent trainings) stay close
    b = benchmarks.get("nb201")
    spread = b.table.groupby("iso")["acc"].agg(lambda s: s.max() - s.min())
    assert (spread < 5).mean() > 0.95


# --------------------------------------------------------------------------- NAS-Bench-Macro
def test_nbmacro_table():
    b = benchmarks.get("nbmacro")
    assert len(b) == 6561 and b.epochs == 50 and b.table["n_seeds"].eq(3).all()
    assert set(b.table.index) == {"".join(p) for p in itertools.product("012", repeat=8)}
    runs = b.table[["run1", "run2", "run3"]].to_numpy()
    np.testing.assert_allclose(runs.mean(axis=1), b.table["acc"].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(runs.std(axis=1), b.table["std"].to_numpy(), atol=1e-6)
    sp = spaces.get("nbmacro")
    for k in ("00000000", "22222222", "02012100", b.optimum[0].text):
        assert b.query(k) == b.query(sp.parse(k))
        assert str(sp.parse(k)) == k
    assert b.query("02012100") == pytest.approx(89.19666544596355)


def test_nbmacro_iso_classes_share_records():
    # keys that differ only in where identities sit inside a stage were trained once (PROVENANCE)
    b = benchmarks.get("nbmacro")
    frame = b.frame()
    frame["iso"] = [b.iso(k) for k in frame["arch"]]
    per_class = frame.groupby("iso")["acc"].nunique()
    assert len(per_class) == 3969 and per_class.max() == 1


# --------------------------------------------------------------------------- FLOPs and cost
@pytest.mark.parametrize("name", ["nb201", "nbmacro"])
def test_additive_flops_match_the_model_count(name):
    sp = spaces.get(name)
    fm = flop_model(name)
    assert isinstance(fm, AdditiveFlops)
    rng = np.random.default_rng(1)
    archs = [sp.sample(rng) for _ in range(5)] + [sp.default()]
    for a in archs:
        assert fm(a.genes) == sp.flops(a), str(a)
    genes = np.array([a.genes for a in archs])
    assert fm.many(genes).tolist() == [sp.flops(a) for a in archs]


def test_nb201_costs_follow_flops():
    b = benchmarks.get("nb201")
    assert b.cost(FULL_CELL) == pytest.approx(200 * b.reference_epoch_seconds)
    costs = b.costs()
    assert len(costs) == 15625 and costs.idxmax() == FULL_CELL and (costs > 0).all()
    empty = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert costs[empty] == costs.min()


# --------------------------------------------------------------------------- user-built tables
def _digits_frame():
    sp = spaces.get("pooling")
    archs = sp.enumerate()[:5]
    return pd.DataFrame({"arch": [str(a) for a in archs], "acc": [90.0, 91.5, 89.0, 91.5, 80.0],
                         "std": [0.1, 0.2, 0.3, 0.4, 0.5], "n_seeds": 2, "train_seconds": 1.0})


def test_save_and_get_user_benchmark(_workspace):
    b = Benchmark.from_frame("pooling", "digits", _digits_frame(), epochs=3, metric="digits test accuracy (%)")
    path = b.save()
    assert path == _workspace / "benchmarks" / "pooling__digits.csv" and b.path == path
    df = pd.read_csv(path)
    assert list(df.columns) == ["arch", "acc", "std", "n_seeds", "epochs", "train_seconds"]
    assert json.loads(path.with_suffix(".json").read_text())["metric"] == "digits test accuracy (%)"
    assert ("pooling", "digits") in benchmarks.available()
    assert benchmarks.datasets("pooling") == ["cifar10", "digits"]
    got = benchmarks.get("pooling", dataset="digits")
    assert got.epochs == 3 and got.metric == "digits test accuracy (%)" and len(got) == 5
    assert got.query("[1,2,7]") == 91.5 and got.rank("[1,2,7]") == got.rank("[1,4,5]") == 1
    assert str(got.optimum[0]) == "[1,2,7]"  # ties: first in table order
    with pytest.raises(KeyError, match="not in the benchmark table"):
        got.query("[4,3,3]")
    # rewritten files are picked up
    frame = _digits_frame()
    frame.loc[4, "acc"] = 99.0
    Benchmark.from_frame("pooling", "digits", frame, epochs=3).save()
    assert benchmarks.get("pooling", "digits").query("[1,5,4]") == 99.0


def test_user_benchmark_without_sidecar_or_std(_workspace):
    folder = _workspace / "benchmarks"
    folder.mkdir(parents=True)
    pd.DataFrame({"arch": ["[4, 3, 3]", "[7,1,2]"], "acc": [50.0, 60.0], "epochs": [4, 4]}).to_csv(
        folder / "pooling__digits.csv", index=False)
    b = benchmarks.get("pooling", "digits")
    assert b.epochs == 4 and b.query("[4,3,3]") == 50.0  # keys canonicalised on load
    # nominal epoch time scaled to the dataset's size (1437 digits vs 50k CIFAR images)
    assert b.reference_epoch_seconds == pytest.approx(10.0 * 1437 / 50_000)
    assert b.cost("[4,3,3]") == pytest.approx(4 * b.reference_epoch_seconds)


def test_user_benchmark_errors(_workspace):
    with pytest.raises(ValueError, match="duplicate architectures"):
        Benchmark.from_frame("pooling", "digits", pd.DataFrame({"arch": ["[4,3,3]", "[4, 3,3]"], "acc": [1, 2]}),
                             epochs=1)
    with pytest.raises(ValueError, match="pooling: .*sum to 10"):
        Benchmark.from_frame("pooling", "digits", pd.DataFrame({"arch": ["[4,3,4]"], "acc": [1.0]}), epochs=1)
    folder = _workspace / "benchmarks"
    folder.mkdir(parents=True)
    pd.DataFrame({"architecture": ["[4,3,3]"], "accuracy": [1.0]}).to_csv(folder / "pooling__bad.csv", index=False)
    with pytest.raises(ValueError, match="lacks the column"):
        benchmarks.get("pooling", "bad")


def test_shipped_table_wins_over_user_file(_workspace):
    Benchmark.from_frame("pooling", "cifar10", _digits_frame(), epochs=1).save()
    assert len(benchmarks.get("pooling", "cifar10")) == 36
    assert benchmarks.available().count(("pooling", "cifar10")) == 1


def test_packaged_digits_ground_truth_is_found_and_user_build_takes_precedence(tmp_path):
    from nasbench_lab import benchmarks as bm

    shipped = bm.get("pooling", dataset="digits")
    assert len(shipped) == 36 and ("pooling", "digits") in bm.available()
    assert shipped.table["n_seeds"].eq(2).all() and shipped.epochs == 3
    assert 95 < shipped.optimum[1] <= 100
    own = shipped.frame().head(3)[["arch", "acc"]].assign(acc=50.0)
    bm.Benchmark.from_frame("pooling", "digits", own, epochs=1).save()
    mine = bm.get("pooling", dataset="digits")
    assert len(mine) == 3 and mine.query(own["arch"].iloc[0]) == 50.0
