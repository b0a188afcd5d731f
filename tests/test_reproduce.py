"""Issue 24: ``nasbench-lab reproduce`` runs a thesis table at a tiny scale on digits and on tiny
CIFAR files, resumes without retraining, keeps finished runs when one diverges, and writes the
table beside the thesis' numbers."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nasbench_lab import cli, reproduce
from nasbench_lab.reproduce import runner
from nasbench_lab.reproduce.tables import TRAIN_IMAGES, thesis_value
from nasbench_lab.runs import Run, RunStore
from nasbench_lab.training import Trainer
from tests.test_data import write_cifar10


def test_list_names_every_table_with_its_budgets(capsys):
    assert cli.main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("table-5.1-pooling", "table-5.1-nbmacro", "table-5.3-nb201", "table-4.3-top10", "figure-2.5-mixtures"):
        assert name in out
    assert "14,700 steps (300 epochs" in out  # Table 5.1 at full scale: App. II, batch 512
    # Table 4.3's two τ columns stay distinguishable; a metric alone in its table loses the parenthesis
    assert "metrics: Kendall τ (true top-10), Kendall τ (all ranked), Top-1\n" in out
    assert "metrics: Top-1, Top-5, Top-10, BSE, Kendall τ\n" in out


def test_plans_follow_the_protocols():
    t51, t43 = reproduce.get("table-5.1-pooling"), reproduce.get("table-4.3-top10")
    specs = reproduce.plan(t51, "cpu", [0, 1, 2])
    assert len(specs) == 9 and [s.seed for s in specs[:3]] == [0, 0, 0]  # seed-major
    assert [s.label for s in specs[:3]] == ["Uniform", "Strict fairness", "Debiased"]
    full = reproduce.plan(t51, "full", [0])[0].trainer
    assert full["steps"] == 300 * math.ceil(TRAIN_IMAGES / 512) and full["batch_size"] == 512
    assert full["lr"] == 0.1 and full["weight_decay"] == 1e-3
    assert reproduce.plan(t51, "full", [0])[2].trainer["method_options"]["warmup"] == pytest.approx(50 / 300)
    # one pooling protocol at cpu scale: Tables 5.1 and 4.3 share their uniform runs
    assert specs[0].key == reproduce.plan(t43, "cpu", [0])[0].key
    assert specs[0].key != reproduce.plan(t51, "cpu", [1])[0].key
    # mixtures: training steps proportional to the number of models (§2.4)
    mix = reproduce.plan(reproduce.get("figure-2.5-mixtures"), "cpu", [0])
    assert [s.trainer["steps"] for s in mix] == [1000, 2000, 4000, 8000]
    assert thesis_value(reproduce.get("table-5.3-nb201"), "FairNas", "top1") == (87.33, 0.89)
    # the debiased NB-201 run keeps the sampler's defaults (KMeans on 1,000 samples, 100 prototypes)
    # at cpu and full scale; only the tiny scale represents 32 samples for 8 prototypes
    t53 = reproduce.get("table-5.3-nb201")
    for scale in ("cpu", "full"):
        assert reproduce.plan(t53, scale, [0])[2].trainer["method_options"] == {"temperature": 5.0, "representation": "functional"}
    tiny = Trainer(**reproduce.plan(t53, "tiny", [0], dataset="digits")[2].trainer).sampler
    assert (tiny.variant, tiny.N, tiny.K, tiny.temperature) == ("prototypes", 32, 8, 5.0)
    with pytest.raises(ValueError, match="--scale"):
        reproduce.plan(t51, "huge", [0])
    with pytest.raises(ValueError, match="unknown 'table-9'"):
        reproduce.get("table-9")


def test_ranked_sample_is_fixed_and_shared():
    a = runner.ranked_archs("nb201", 200, 0)
    assert len(a) == len(set(a)) == 200 and a == runner.ranked_archs("nb201", 200, 0)
    assert len(runner.ranked_archs("pooling", None, 0)) == 36


class _Bandit:
    """A supernet stub: each architecture's minibatch accuracy is a fixed value (no noise)."""

    def __init__(self, values):
        self.values = values
        self.calls = 0

    def reward(self, arch):
        self.calls += 1
        return self.values[arch]


def test_bse_draws_the_budget_and_picks_the_best_running_mean():
    values = {f"a{i}": 0.5 + 0.01 * i for i in range(10)}
    archs = list(values)
    stub = _Bandit(values)
    pick, trace = runner.bse_pick(stub, archs, rounds=100, seed=0)
    assert stub.calls == 100 and sum(trace["draws"]) == 100
    assert pick == "a9"
    # the annealed inverse temperature concentrates the draws on the best arms
    assert trace["draws"][9] > trace["draws"][0]
    assert trace["mean_reward"] == pytest.approx([values[a] for a in archs])


def _tiny_cifar(tmp_path):
    write_cifar10(tmp_path / "data", per_batch=40)
    return tmp_path / "data"


def test_table_on_tiny_cifar_files_then_resumes_without_retraining(tmp_path, capsys):
    root = _tiny_cifar(tmp_path)
    out, store = tmp_path / "t53", tmp_path / "runs.db"
    argv = ["reproduce", "table-5.3-nb201", "--scale", "tiny", "--seeds", "0", "--data-root", str(root),
            "--out", str(out), "--store", str(store)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "Table 5.3 (CIFAR-10)" in printed and "0.42" in printed  # the thesis' uniform tau beside ours
    df = pd.read_csv(out / "table-5.3-nb201.csv")
    assert list(df["label"]) == ["Uniform", "FairNas", "Debiased"] and set(df["seed"]) == {0}
    assert df["kendall_tau"].between(-1, 1).all() and (df["n_ranked"] == 8).all()
    assert df["top1"].between(0, 100).all()
    summ = pd.read_csv(out / "table-5.3-nb201.summary.csv")
    row = summ[(summ["label"] == "Debiased") & (summ["metric"] == "kendall_tau")].iloc[0]
    assert row["thesis"] == 0.59 and row["n"] == 1
    prov = json.loads((out / "table-5.3-nb201.csv.provenance.json").read_text())
    assert prov["argv"] == argv and "commit" in prov
    fig = json.loads((out / "table-5.3-nb201.figure.json").read_text())
    assert {t["name"] for t in fig["data"]} >= {"thesis", "ours: one seed"}
    # every run is in the run store, finished
    runs = RunStore(store).runs()
    assert len(runs) == 3 and set(runs["status"]) == {"finished"}
    # without --resume an existing table is not overwritten
    assert cli.main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    # with --resume nothing is retrained or judged again
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert cli.main([*argv, "--resume"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")} == stamps
    assert len(RunStore(store).runs()) == 3
    # another seed added later: only its runs train, and the table is of every seed in --out
    seed1 = [*argv[:5], "1", *argv[6:], "--resume"]
    assert cli.main(seed1) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json") if p.name in stamps} == stamps
    df = pd.read_csv(out / "table-5.3-nb201.csv")
    assert sorted(df["seed"]) == [0, 0, 0, 1, 1, 1] and len(RunStore(store).runs()) == 6
    summ = pd.read_csv(out / "table-5.3-nb201.summary.csv")
    assert set(summ.loc[summ["metric"] == "kendall_tau", "n"]) == {2}
    assert "6 of the 6 runs of seeds 0, 1. Budget rule: equal" in (out / "table-5.3-nb201.md").read_text()


def test_a_stopped_run_continues_from_its_checkpoint(tmp_path):
    table = reproduce.get("table-5.1-pooling")
    spec = reproduce.plan(table, "tiny", [3], dataset="digits")[0]
    store = RunStore(tmp_path / "runs.db")
    run = Run(Trainer(**spec.trainer), store=store, run_id=spec.key, checkpoint_every=100)
    run.step(5)
    run.stop()  # like Ctrl-C: the last checkpoint is written at step 5
    assert run.job.step_count == 5 and store.run(spec.key)["status"] == "stopped"
    res = runner.execute(spec, tmp_path / "out", store=store, progress=False, log=lambda s: None)
    assert res["steps"] == 12 and res["run_id"] == spec.key and res["resumed_from"] == 5
    assert store.run(spec.key)["status"] == "finished"
    assert -1 <= res["kendall_tau"] <= 1 and res["bse_arch"] and res["bse"] > 80  # a pooling layout's true acc
    # the shared-BN diagnostic: the same ranking without per-path BN recalibration, recomputed here
    from scipy.stats import kendalltau

    from nasbench_lab import benchmarks

    job = runner._load_trained(Path(store.run(spec.key)["checkpoint"]))
    bench = benchmarks.get("pooling", dataset="cifar10")
    archs = runner.ranked_archs("pooling", spec.rank_sample, spec.rank_seed)
    m = [job.evaluate_metrics(a, recalibrate=False, max_images=spec.rank_images) for a in archs]
    order = sorted(range(len(archs)), key=lambda i: (-m[i][0], m[i][1]))
    score = np.empty(len(archs))
    score[order] = -np.arange(len(archs))
    assert res["kendall_tau_shared_bn"] == pytest.approx(kendalltau(score, [bench.query(a) for a in archs])[0], abs=1e-9)
    # a result judged before the diagnostic existed gets it from the checkpoint, nothing retrained
    p = tmp_path / "out" / "runs" / f"{spec.key}.json"
    old = json.loads(p.read_text())
    p.write_text(json.dumps({k: v for k, v in old.items() if not k.endswith("_shared_bn")}))
    again = runner.execute(spec, tmp_path / "out", store=store, progress=False, log=lambda s: None)
    assert again["kendall_tau_shared_bn"] == pytest.approx(old["kendall_tau_shared_bn"], abs=1e-9)
    assert json.loads(p.read_text())["kendall_tau_top10_shared_bn"] == old["kendall_tau_top10_shared_bn"]
    assert store.run(spec.key)["total_steps"] == 12


def test_a_diverging_run_is_reported_and_the_others_are_kept(tmp_path, monkeypatch):
    real_plan = runner.plan

    def plan_with_a_bad_lr(table, scale, seeds, **kw):
        specs = real_plan(table, scale, seeds, **kw)
        bad = dataclasses.replace(specs[1], trainer={**specs[1].trainer, "lr": 1e30})
        return [specs[0], bad]

    monkeypatch.setattr(reproduce, "plan", plan_with_a_bad_lr)
    rep = reproduce.reproduce("table-5.1-pooling", scale="tiny", seeds=[0], dataset="digits", out=tmp_path / "o",
                              store=RunStore(tmp_path / "r.db"), progress=False, log=lambda s: None)
    assert len(rep.results) == 1 and len(rep.failed) == 1 and not rep.complete
    assert "became nan" in rep.failed[0][1].lower() or "inf" in rep.failed[0][1].lower()
    df = pd.read_csv(rep.files["csv"])
    assert list(df["label"]) == ["Uniform"]  # the finished run is in the table


def test_missing_data_is_a_clear_error_before_any_training(tmp_path, capsys):
    rc = cli.main(["reproduce", "table-5.1-pooling", "--scale", "tiny", "--seeds", "0",
                   "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "nowhere" in err
    assert not (tmp_path / "o" / "runs").exists()


def test_verdict_is_computed_from_the_paired_seeds():
    from nasbench_lab.reproduce import report

    t = reproduce.get("table-5.1-pooling")
    df = pd.DataFrame({"label": ["Uniform"] * 3 + ["Strict fairness"] * 3 + ["Debiased"] * 3,
                       "seed": [0, 1, 2] * 3,
                       "kendall_tau": [0.10, 0.12, 0.14, 0.30, 0.02, 0.25, 0.30, 0.33, 0.34]})
    lines = report.verdict(t, df)
    # fairness - uniform: d = [.20, -.10, .11], mean .07, sd sqrt(.0474 / 2) = .1540 -> 4.303 * .1540 / sqrt 3 = .382
    assert lines[0].startswith("Strict fairness − Uniform (kendall_tau): +0.070 ± 0.382") and "not distinguishable" in lines[0]
    # debiased - uniform: d = [.20, .21, .20]: the thesis' direction (+0.18), reproduced
    assert "+0.203" in lines[1] and "reproduced" in lines[1] and "thesis +0.180" in lines[1]
    summ = report.summary(t, df)
    r = summ[(summ.label == "Debiased") & (summ.metric == "kendall_tau")].iloc[0]
    assert r.ours_mean == pytest.approx(0.32333, abs=1e-4) and r.n == 3 and r.thesis == 0.34


def test_report_writes_the_table_of_what_finished_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["reproduce", "table-4.3-top10", "--scale", "tiny", "--seeds", "0", "1", "--dataset", "digits",
            "--out", str(out), "--store", str(tmp_path / "r.db"), "--report"]
    assert cli.main(argv) == 2 and "nothing to report" in capsys.readouterr().err
    spec = reproduce.plan(reproduce.get("table-4.3-top10"), "tiny", [0], dataset="digits")[0]
    runner.execute(spec, out, store=RunStore(tmp_path / "r.db"), progress=False, log=lambda s: None)
    assert cli.main(argv) == 0
    df = pd.read_csv(out / "table-4.3-top10.csv")
    assert list(df["label"]) == ["Uniform Sampling"] and len(RunStore(tmp_path / "r.db").runs()) == 1
    md = (out / "table-4.3-top10.md").read_text()
    assert "1 of the 8 runs of seeds 0, 1 (the rest not finished yet). Budget rule: equal" in md
    # the same paragraph as a training call writes: re-reporting drops no line of it
    proto = reproduce.get("table-4.3-top10").protocol("tiny")
    assert f"Protocol: {proto.describe()}." in md and (not proto.note or f"Budget: {proto.note}." in md)
