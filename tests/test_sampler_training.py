"""Each thesis sampler drives a real tiny Trainer (pooling on digits) and resumes identically."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest
import torch

from nasbench_lab import data
from nasbench_lab.runs import Run
from nasbench_lab.training import Trainer
from nasbench_lab.training import representations as reps
from nasbench_lab.training.samplers.mixture import MixtureSupernet

# Two busy cores are shared by several test runs: one intra-op thread avoids OpenMP
# oversubscription, which makes small convolutions tens of times slower.


STEPS = 8

CASES = {
    "boltzmann": {},
    "independent": {"warmup": 0.25},
    "mcts": {"warmup": 0.25, "uct_warmup": 0.25},
    "mcts-reg": {"warmup": 0.25, "uct_warmup": 0.25},
    "mcts-learned": {"warmup": 0.25, "uct_warmup": 0.25, "batch_size": 16},
    "mcts-iterative": {"warmup": 0.25, "iterations": 2, "rank_batches": 1},
    "mixture": {"models": 2},
    "density": {"warmup": 0.25, "batch_size": 16, "reestimate_every": 0.5},
    "density-prototypes": {"variant": "prototypes", "prototypes": 3, "initial_samples": 8, "warmup": 0.25,
                           "batch_size": 16, "max_tries": 3},
    "enas": {"controller_every": 2, "controller_steps": 1, "aggregate": 2},
}


@pytest.fixture(scope="module")
def digits():
    return data.get("digits", seed=0)


def _trainer(name, digits, **kw):
    method = name.split("-prototypes")[0]
    return Trainer(space="pooling", dataset="digits", data=digits, steps=STEPS, batch_size=16,
                   val_batch_size=16, rank_at_end=False, augment=False, method=method,
                   method_options=CASES[name], **kw)


def _run(tr, n):
    return [tr.step() for _ in range(n)]


@pytest.mark.parametrize("name", list(CASES))
def test_sampler_trains_a_real_supernet_and_resumes_identically(name, digits):
    torch.manual_seed(0)
    tr = _trainer(name, digits)
    first = _run(tr, STEPS // 2)
    state = copy.deepcopy(tr.state_dict())
    rest = _run(tr, STEPS // 2)
    assert all(np.isfinite(m["loss"]) and 0.0 <= m["reward"] <= 1.0 for m in first + rest)
    s = tr.sampler
    # the phase work of each method really happened during these few steps
    if name == "mcts-learned":
        assert s.tree is not None and s.tree.kind == "learned" and len(s.tree.leaves()) == 36
    if name == "mcts-iterative":
        assert s.iteration == 2 and len(s.scores) == 36 and s.tree.kind == "rank"
    if name in ("mcts", "mcts-reg", "mcts-learned", "mcts-iterative"):
        assert s.tree.n[0] >= 2 and s.select()
    if name == "density":
        assert s.estimations == 2 and np.isclose(s.probs.sum(), 1.0)
    if name == "density-prototypes":
        assert s.prototypes.shape[0] == 3 and s.tried >= s.accepted >= 5
    if name == "enas":  # controller phases at steps 2, 4 and 6, one update of 2 samples each
        assert s.updates == 3 and len(s.history) == 3 and s.baseline is not None
    if name == "mixture":
        assert isinstance(tr.net, MixtureSupernet) and s.counts.sum() == STEPS
        # only the drawn model of each step was updated: optimizer state exists for those
    snap = tr.snapshot()
    assert snap["panel"].startswith("nasbench_lab.viz.") and snap["steps"] == STEPS

    again = _trainer(name, digits, seed=1)  # another seed: everything must come from the state
    again.load_state_dict(state)
    resumed = _run(again, STEPS // 2)
    assert [m["arch"] for m in resumed] == [m["arch"] for m in rest]
    assert [m["loss"] for m in resumed] == pytest.approx([m["loss"] for m in rest], rel=1e-5)
    assert again.snapshot() == snap


def test_mixture_checkpoint_through_run_resume(digits, tmp_path):
    tr = _trainer("mixture", digits)
    run = Run(tr, store=False, checkpoint_every=4, snapshot_every=2, checkpoint_dir=tmp_path)
    run.step(4)
    path = tmp_path / "saved" / "at4" / "last.pt"  # the run's own file is rewritten at the end
    path.parent.mkdir(parents=True)
    shutil.copy(run.checkpoint(), path)
    run.step(4)
    tail = [e.data["arch"] for e in run.events.since(0, kinds=("step",))][4:]
    resumed = Run.resume(path, store=False)
    assert isinstance(resumed.job.net, MixtureSupernet)
    resumed.step(4)
    assert [e.data["arch"] for e in resumed.events.since(0, kinds=("step",))] == tail


def test_representations_of_a_trained_supernet(digits):
    tr = _trainer("boltzmann", digits)
    _run(tr, 2)
    archs = tr.space.enumerate()[:6]
    for kind in ("functional", "gradient", "representational", "encoding"):
        r = reps.compute(tr, archs, kind, batch_size=16, gamma=0.5)
        D = r.distances()
        assert D.shape == (6, 6) and np.allclose(np.diag(D), 0.0, atol=1e-6)
        assert np.allclose(D, D.T, atol=1e-6) and (D[~np.eye(6, dtype=bool)] > 0).all()
    cka = reps.compute(tr, archs[:2], "representational", batch_size=16)
    assert cka.X.shape[1] == 3 * 16 * 16  # three hooked blocks, one 16x16 centred Gram matrix each


def test_periodic_ranking_feeds_the_kendall_panel(digits):
    from nasbench_lab.viz.ranking import kendall_panel

    tr = Trainer(space="pooling", dataset="digits", data=digits, steps=5, batch_size=16, val_batch_size=16,
                 rank_at_end=False, augment=False, method="mcts", rank_every=2, rank_images=16,
                 recalibration_batches=1, rank_sample=8)
    events = []
    tr.bind(lambda kind, step=None, **d: events.append((kind, step, d)))
    _run(tr, 5)
    assert [r["step"] for r in tr.rankings] == [2, 4]  # not at the last step: finish() ranks there
    assert [(k, s) for k, s, _ in events if k != "phase"] == [("ranking", 2), ("ranking", 4)]
    assert {s for k, s, _ in events if k == "phase"} == {2, 4}  # the dashboard's "ranking" phase
    assert all(r["n"] == 8 for r in tr.rankings)  # rank_sample distinct architectures
    snap = tr.snapshot()
    assert snap["rankings"] == tr.rankings
    assert len(kendall_panel(snap).data) == 2


def test_compare_samplers_at_equal_budgets(digits):
    from nasbench_lab import benchmarks
    from nasbench_lab.training.samplers import compare as cmp

    bench = benchmarks.get("pooling", dataset="cifar10")  # mechanics only
    res = cmp.compare(["uniform", "mcts"], [0], steps=4, benchmark=bench, rank_images=16, batch_size=16,
                      val_batch_size=16, recalibration_batches=1, rank_sample=10, progress=False)
    t = res.table
    assert list(t["method"]) == ["uniform", "mcts"] and (t["steps"] == 4).all()
    assert t["kendall_tau"].between(-1, 1).all() and t["selected_truth_rank"].between(1, 36).all()
    assert len(res.rankings[("uniform", 0)]) == 10  # rank_sample distinct architectures
    assert t.loc[t.method == "uniform", "method_pick"].isna().all()  # uniform has no final rule
    assert sum(sum(w["counts"].values()) for w in res.windows[("mcts", 0)]) == 4
    summary = cmp.summarize(res)
    assert list(summary.index) == ["uniform", "mcts"] and (summary["seeds"] == 1).all()
    with pytest.raises(ValueError, match="methods"):
        cmp.compare(["nope"], [0])


def test_budget_rules_give_a_mixture_steps_in_proportion_to_its_models():
    """Issue 22 item 5, thesis §2.4: "the number of training epochs is set proportional to number of models"."""
    from nasbench_lab.training.samplers.compare import budget_steps

    assert budget_steps("mixture", 300) == 300  # equal: the same steps for every method
    assert budget_steps("mixture", 300, "per-model", {"models": 8}) == 2400
    assert budget_steps("mixture", 300, "per-model") == 1200  # the comparison's default M = 4
    assert budget_steps("uniform", 300, "per-model") == budget_steps("mcts-learned", 300, "per-model") == 300
    with pytest.raises(ValueError, match="budget_rule"):
        budget_steps("mixture", 300, "per-epoch")
    with pytest.raises(ValueError, match="models: expected a positive integer"):
        budget_steps("mixture", 300, "per-model", {"models": 0})


def test_compare_says_what_each_method_trained_at_an_equal_budget(digits):
    """Issue 22 item 7: mcts-learned's ranked supernet trains on the steps after its warm-up only."""
    from nasbench_lab import benchmarks
    from nasbench_lab.training.samplers import compare as cmp

    bench = benchmarks.get("pooling", dataset="cifar10")  # mechanics only
    tiny = dict(benchmark=bench, rank_images=16, batch_size=16, val_batch_size=16, recalibration_batches=1,
                rank_sample=8, progress=False, data=digits)
    res = cmp.compare(["mcts-learned", "mixture"], [0], steps=10, options_by_method={
        "mcts-learned": {"batch_size": 16}, "mixture": {"models": 2}}, **tiny)
    t = res.table.set_index("method")
    assert (t["budget_rule"] == "equal").all() and (t["steps"] == 10).all()
    # fresh search weights at 40 % (Alg. 3.1 line 24): the ranked supernet saw the last 6 steps
    assert t.loc["mcts-learned", "supernet_steps"] == 6 and t.loc["mixture", "supernet_steps"] == 10
    assert t.loc["mixture", "weight_sets"] == 2 and t.loc["mcts-learned", "weight_sets"] == 1
    notes = res.notes
    assert any(n.startswith("mcts-learned: its ranked supernet trained from fresh weights on the last 6 of 10 "
                            "steps (60%") for n in notes)
    assert any("mixture: 2 supernets share 10 steps (about 5 each); --budget-rule per-model" in n for n in notes)
    assert notes[0].startswith("budget rule equal")
    # the warm-up share is an option; per-model gives the mixture M x the steps
    res = cmp.compare(["mcts-learned", "mixture"], [0], steps=10, budget_rule="per-model", options_by_method={
        "mcts-learned": {"batch_size": 16, "warmup": 0.2}, "mixture": {"models": 2}}, **tiny)
    t = res.table.set_index("method")
    assert t.loc["mcts-learned", "supernet_steps"] == 8 and t.loc["mcts-learned", "steps"] == 10
    assert t.loc["mixture", "steps"] == 20 and t.loc["mixture", "supernet_steps"] == 20
    assert (t["budget_rule"] == "per-model").all() and res.notes[0].startswith("budget rule per-model")
    summary = cmp.summarize(res)
    assert list(summary.columns[:3]) == ["budget_rule", "steps", "supernet_steps"]
    assert summary.loc["mixture", "steps"] == 20
    with pytest.raises(ValueError, match="options of mcts-learned: sampler 'mcts-learned' takes no option 'warmpu'"):
        cmp.compare(["uniform", "mcts-learned"], [0], steps=2, options_by_method={"mcts-learned": {"warmpu": 0.2}},
                    **tiny)
    with pytest.raises(ValueError, match="options_by_method"):
        cmp.compare(["uniform"], [0], steps=2, options_by_method={"mixture": {"models": 2}}, **tiny)


def test_compare_samplers_cli_budget_rule_and_options(capsys, tmp_path):
    import pandas as pd

    from nasbench_lab import cli

    out = tmp_path / "t.csv"
    code = cli.main(["compare-samplers", "--methods", "mixture", "--seeds", "0", "--steps", "2", "--batch-size", "16",
                     "--val-batch-size", "16", "--rank-images", "16", "--budget-rule", "per-model",
                     "--truth-dataset", "cifar10", "--options", '{"mixture": {"models": 2}}', "--csv", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "note: budget rule per-model" in text and "note: mixture: 2 supernets share 4 steps" in text
    t = pd.read_csv(out)
    assert list(t["budget_rule"]) == ["per-model"] and list(t["steps"]) == [4]
    assert cli.main(["compare-samplers", "--methods", "uniform", "--options", "{bad"]) == 2
    assert "--options: not valid JSON" in capsys.readouterr().err
