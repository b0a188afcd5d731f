"""Supernet ranking: ties broken by validation loss, reported as ties, and a readable scatter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from nasbench_lab import benchmarks
from nasbench_lab.training import Trainer
from nasbench_lab.training.ranking import rank_supernet, tie_broken_rank
from nasbench_lab.viz.ranking import ranking_scatter
from nasbench_lab.viz.style import robust_range


def test_tie_broken_rank_orders_by_accuracy_then_loss_and_keeps_true_ties():
    # by hand: 90/0.4 first; the two 90/0.5 share place 2; the two 80/0.3 share place 4
    assert tie_broken_rank([90, 90, 80, 90, 80], [0.5, 0.4, 0.3, 0.5, 0.3]).tolist() == [2, 1, 4, 2, 4]
    assert tie_broken_rank([1.0, 3.0, 2.0]).tolist() == [3, 1, 2]  # no loss: plain "min" ranks
    assert tie_broken_rank([5.0, 5.0], [np.nan, 0.1]).tolist() == [2, 1]  # a missing loss sorts last


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    tr = Trainer(space="pooling", dataset="digits", steps=12, batch_size=16, val_batch_size=32, device="cpu",
                 rank_at_end=False, recalibration_batches=1, seed=0)
    for _ in range(12):
        tr.step()
    return tr


def test_rank_supernet_breaks_accuracy_ties_by_validation_loss(trained):
    bench = benchmarks.get("pooling", "cifar10")
    calls = []
    df = rank_supernet(trained, benchmark=bench, max_images=32, on_progress=lambda d, n: calls.append((d, n)))
    assert calls == [(i, 36) for i in range(37)]
    # 32 images allow 33 accuracies for 36 architectures: accuracy alone must tie somewhere
    assert df["estimate"].duplicated().any()
    # every estimate and loss is what one independent forward pass of that path gives
    for row in df.sample(3, random_state=0).itertuples():
        trained.recalibrate_bn(trained.space.parse(row.arch))
        trained.net.eval()
        with torch.no_grad():
            logits = trained.net(trained.data.val_x[:32], trained.space.parse(row.arch))
        trained.net.train()
        y = trained.data.val_y[:32]
        assert row.estimate == pytest.approx(100.0 * float((logits.argmax(1) == y).float().mean()))
        assert row.val_loss == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    # the table is in (accuracy desc, loss asc) order; ranks are shared only by equal pairs
    key = list(zip(-df["estimate"], df["val_loss"]))
    assert key == sorted(key)
    for _, group in df.groupby("est_rank"):
        assert len(set(zip(group["estimate"], group["val_loss"]))) == 1
        assert (group["tied"] == len(group) - 1).all()
    assert df["est_rank"].nunique() > df["estimate"].nunique()  # the loss separated accuracy ties
    # the summary is computed on that order, against scipy
    tau = stats.kendalltau(-df["est_rank"], df["truth"]).statistic
    assert df.attrs["summary"]["kendall_tau"] == pytest.approx(tau)
    assert df.attrs["selected"] == df["arch"].iloc[0]
    assert df.attrs["summary"]["selected_tied"] == int(df["tied"].iloc[0])


def _table(noise: float = 0.3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(88, 93, 36)
    est = 40 + 0.5 * truth + rng.normal(0, noise, 36)
    return pd.DataFrame({"arch": [f"a{i}" for i in range(36)], "estimate": est, "truth": truth})


def test_a_far_outlier_sits_on_the_edge_instead_of_squashing_the_others():
    df = _table()
    plain = ranking_scatter(df)
    assert not [t for t in plain.data if t.meta["role"] == "outliers"] and plain.layout.yaxis.range is None
    df.loc[3, "estimate"] = 12.0  # a path the supernet never learned
    fig = ranking_scatter(df)
    lo, hi = fig.layout.yaxis.range
    others = df["estimate"].drop(3)
    assert lo < others.min() and hi > others.max() and lo > 12.0  # the axis keeps to the other 35
    out = next(t for t in fig.data if t.meta["role"] == "outliers")
    assert list(out.y) == [lo] and out.marker.symbol[0] == "triangle-down-open"
    assert "a3: est. 12.0%, truth" in out.name
    assert sum(len(t.x) for t in fig.data if t.meta["role"] in ("all", "topk", "outliers")) == 36
    assert robust_range(np.arange(10.0)) is None  # an even spread has no outliers


def test_ties_read_as_ties_in_the_scatter():
    df = _table().sort_values("estimate", ascending=False).reset_index(drop=True)
    df.loc[1, "estimate"] = df.loc[0, "estimate"]  # the two best estimates tie (no loss to separate them)
    df["est_rank"] = tie_broken_rank(df["estimate"])
    df["tied"] = df.groupby("est_rank")["arch"].transform("size") - 1
    fig = ranking_scatter(df)
    sel = next(t for t in fig.data if t.meta["role"] == "selected")
    assert sel.name == "selected (best estimate, tied with 1)" and "(tie ×2)" in sel.text[0]
    hovers = [h for t in fig.data for h in (t.hovertext or ())]
    assert sum("estimated rank 1 (tied with 1)" in h for h in hovers) == 3  # both points and the star
