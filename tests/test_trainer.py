"""The single-path Trainer, the uniform and fair samplers, resume determinism, ranking."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from scipy import stats

from nasbench_lab import data, spaces
from nasbench_lab.runs import Run, RunStore
from nasbench_lab.training import Trainer, samplers

SMALL = {"space": "pooling", "dataset": "digits", "batch_size": 16, "val_batch_size": 32, "rank_at_end": False}


@pytest.fixture(scope="module")
def digits():
    return data.get("digits")


def test_uniform_sampler_is_uniform_over_the_constrained_pooling_space():
    sp = spaces.get("pooling")
    s = samplers.get("uniform", sp, seed=1)
    n = 36 * 200
    counts = Counter(str(s.sample()) for _ in range(n))
    assert len(counts) == 36
    # chi-square goodness of fit against the uniform distribution over the 36 architectures
    p = stats.chisquare(list(counts.values())).pvalue
    assert p > 0.001
    # per-level uniform sampling would give n32=8 (a single arch) 1/8 of the mass; uniform gives 1/36
    assert counts["[8,1,1]"] / n == pytest.approx(1 / 36, abs=0.01)


def test_fair_sampler_trains_every_choice_equally_often_per_window():
    sp = spaces.get("pooling")
    s = samplers.get("fair", sp, seed=0)
    first = [str(s.sample()) for _ in range(36)]
    assert sorted(first) == sorted(str(a) for a in sp.enumerate())  # one window = every arch once
    nb = spaces.get("nbmacro")
    f = samplers.get("fair", nb, seed=0)
    window = [f.sample() for _ in range(3)]
    for level in range(nb.num_levels):
        assert sorted(a.genes[level] for a in window) == [0, 1, 2]


def test_sampler_names_and_bad_input():
    assert {"uniform", "fair"} <= set(samplers.names())
    with pytest.raises(ValueError, match="valid names: uniform, fair"):
        samplers.get("nope", spaces.get("pooling"))
    with pytest.raises(ValueError, match="method: unknown 'nope'"):
        Trainer(method="nope", **{k: v for k, v in SMALL.items()})
    with pytest.raises(ValueError, match="steps: expected a positive integer"):
        Trainer(steps=0, **SMALL)
    with pytest.raises(ValueError, match="space: unknown 'cifar'"):
        Trainer(**{**SMALL, "space": "cifar"})


def test_training_reduces_loss_on_digits(digits):
    tr = Trainer(steps=60, lr=0.05, data=digits, **SMALL)
    losses = [tr.step()["loss"] for _ in range(60)]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.3
    acc = tr.evaluate("[4,3,3]")
    assert acc > 20.0  # well above the 10 % of chance after 60 small steps


def test_resume_reproduces_the_uninterrupted_trajectory(tmp_path, digits):
    store = RunStore(tmp_path / "runs.sqlite")
    full = Run(Trainer(steps=12, data=digits, **SMALL), store=store, checkpoint_every=100)
    full.start().result(timeout=300)
    ref = [(e.data["arch"], e.data["loss"], e.data["reward"]) for e in full.events.since(0, kinds="step")]

    part = Run(Trainer(steps=12, data=digits, **SMALL), store=store, checkpoint_every=100)
    part.step(5)
    part.stop()
    resumed = Run.resume(part.checkpoint_path, store=store)
    resumed.start().result(timeout=300)
    got = [(e.data["arch"], e.data["loss"], e.data["reward"])
           for e in part.events.since(0, kinds="step") + resumed.events.since(0, kinds="step")]
    assert [a for a, _, _ in got] == [a for a, _, _ in ref]
    np.testing.assert_allclose([x for _, x, _ in got], [x for _, x, _ in ref], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([r for _, _, r in got], [r for _, _, r in ref], atol=1e-6)
    # the store holds one continuous record of the interrupted run
    m = store.metrics(part.run_id)
    assert list(m.index) == list(range(1, 13))
    np.testing.assert_allclose(m["loss"].to_numpy(), [x for _, x, _ in ref], rtol=1e-4, atol=1e-5)


def test_checkpoint_from_another_space_is_refused(tmp_path, digits):
    run = Run(Trainer(steps=3, data=digits, **SMALL), store=False, checkpoint_dir=tmp_path)
    run.step(2)
    run.stop()
    import nasbench_lab.runs.checkpoint as ckpt

    payload = ckpt.load(run.checkpoint_path)
    payload["meta"]["space"] = "nb201"
    del payload["format"], payload["rng"]
    ckpt.save(tmp_path / "other.pt", payload)
    with pytest.raises(ValueError, match="space"):
        Run.resume(tmp_path / "other.pt", store=False)


def test_exception_in_training_thread_marks_run_failed(tmp_path, digits):
    tr = Trainer(steps=10, data=digits, **SMALL)
    original = tr.net.forward
    calls = {"n": 0}

    def flaky(x, arch):
        calls["n"] += 1
        if calls["n"] > 6:
            raise FloatingPointError("loss exploded")
        return original(x, arch)

    tr.net.forward = flaky
    store = RunStore(tmp_path / "runs.sqlite")
    run = Run(tr, store=store)
    run.start()
    with pytest.raises(Exception, match="loss exploded"):
        run.result(timeout=120)
    rec = store.run(run.run_id)
    assert rec["status"] == "failed" and "FloatingPointError" in rec["error"]
    assert store.metrics(run.run_id).shape[0] == 3  # 2 forwards per step: 3 full steps done


def test_bn_recalibration_is_deterministic_and_changes_statistics(digits):
    tr = Trainer(steps=5, data=digits, **SMALL)
    for _ in range(5):
        tr.step()
    a = tr.evaluate("[1,1,8]")
    b = tr.evaluate("[1,1,8]")
    assert a == b
    bn = [m for m in tr.net.modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]  # a deep one: its input depends on the poolings
    tr.recalibrate_bn(spaces.get("pooling").parse("[8,1,1]"))
    m1 = bn.running_mean.clone()
    tr.recalibrate_bn(spaces.get("pooling").parse("[1,1,8]"))
    assert not torch.allclose(m1, bn.running_mean)
