"""The workbench widgets driven by real Runs: what the views hold after ``refresh()``."""

from __future__ import annotations

import asyncio
import html
import json
import threading
import time
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from waits import seconds

import nasbench_lab as nl
from nasbench_lab import benchmarks, spaces
from nasbench_lab.runs import Job, Run, RunStore
from nasbench_lab.viz.curves import smooth
from nasbench_lab.widgets import ArchitectureExplorer, Launcher, RunBrowser, RunDashboard, launch

POOLING = [str(a) for a in spaces.get("pooling").enumerate()]


class ToyJob(Job):
    """A deterministic job on the pooling space: loss 1/step, reward step/total, archs in order.

    ``gate`` (a threading.Event) makes each step wait, so a test can hold a run mid-way.
    """

    kind = "toy"

    def __init__(self, steps: int = 20, fail_at: int | None = None, offset: int = 0, rank: bool = False,
                 gate: threading.Event | None = None) -> None:
        self.total_steps, self.step_count = steps, 0
        self.fail_at, self.offset, self.rank, self.gate = fail_at, offset, rank, gate
        self.counts: Counter[str] = Counter()

    def config(self) -> dict[str, Any]:
        return {"space": "pooling", "method": "toy", "dataset": "cifar10", "steps": self.total_steps}

    def step(self) -> dict[str, Any]:
        if self.gate is not None:
            self.gate.wait(10)
        self.step_count += 1
        if self.fail_at is not None and self.step_count == self.fail_at:
            raise RuntimeError(f"toy failure at step {self.step_count}")
        arch = POOLING[(self.step_count + self.offset) % len(POOLING)]
        self.counts[arch] += 1
        return {"loss": 1.0 / self.step_count + self.offset, "reward": self.step_count / self.total_steps, "arch": arch}

    def snapshot(self) -> dict[str, Any]:
        return {"name": "toy", "counts": dict(self.counts)}

    def finish(self) -> dict[str, Any]:
        if self.rank:  # the supernet "estimate" is the truth reversed for half the space
            bm = benchmarks.get("pooling", "cifar10")
            table = [{"arch": a, "estimate": (bm.query(a) if i % 2 else -bm.query(a))} for i, a in enumerate(POOLING)]
            self.emit("ranking", summary={"n": len(table)}, table=table)
        return {"steps": self.step_count}


def _traces(dash: RunDashboard) -> dict[tuple[str, str], Any]:
    return {(t.meta["role"], t.meta["metric"]): t for t in dash.curves.data}


def test_refresh_extends_the_curves_in_place_and_shows_dag_and_panel():
    run = Run(ToyJob(steps=20), store=False, snapshot_every=5)
    dash = RunDashboard(run, auto_refresh=False)
    fw_ids = [id(dash.curves), id(dash.dag), id(dash.panel)]
    assert dash.status.value.count("created") == 1
    assert not dash.buttons["start"].disabled and dash.buttons["pause"].disabled
    run.step(7)
    assert dash.refresh(force_slow=True) > 7  # step, status and snapshot events
    tr = _traces(dash)
    assert list(tr[("raw", "loss")].x) == list(range(1, 8))
    np.testing.assert_allclose(tr[("raw", "loss")].y, [1 / s for s in range(1, 8)])
    run.step(5)
    dash.refresh(force_slow=True)
    tr = _traces(dash)
    assert len(tr[("raw", "loss")].x) == 12
    np.testing.assert_allclose(tr[("smooth", "reward")].y, smooth([s / 20 for s in range(1, 13)], 0.9))
    assert [id(dash.curves), id(dash.dag), id(dash.panel)] == fw_ids  # updated in place
    # the DAG shows the architecture of the last step event
    last = POOLING[12 % 36]
    assert last in dash.dag.layout.title.text
    pools = [t for t in dash.dag.data if t.meta["role"] == "pool"][0]
    assert len(pools.x) == 2
    # no panel named in the snapshot: sampling frequency from its counts (snapshot at step 10)
    bars = dash.panel.data[0]
    assert len(bars.x) == 36 and sum(bars.y) == 10
    assert dash.progress.value == 12 and "12 / 20" in dash.progress_text.value
    assert "paused" in dash.status.value and not dash.buttons["resume"].disabled
    run.start()
    run.wait(10)
    dash.refresh(force_slow=True)
    assert len(_traces(dash)[("raw", "loss")].x) == 20
    assert "finished" in dash.status.value
    assert all(b.disabled for b in dash.buttons.values())


def test_failed_run_shows_its_error_and_traceback():
    run = Run(ToyJob(steps=10, fail_at=4), store=False)
    dash = RunDashboard(run, auto_refresh=False)
    assert dash.error.layout.display == "none"
    run.start()
    assert run.wait(10) == "failed"
    dash.refresh()
    assert dash.error.layout.display == "block"
    assert "RuntimeError: toy failure at step 4" in dash.error.value
    assert "Traceback" in dash.error.value and "in step" in dash.error.value
    assert "failed" in dash.status.value
    assert len(_traces(dash)[("raw", "loss")].x) == 3  # the steps before the failure


def test_two_dashboards_on_two_runs_do_not_interfere():
    runs = [Run(ToyJob(steps=30, offset=k), store=False) for k in (0, 5)]
    dashes = [RunDashboard(r, auto_refresh=False) for r in runs]
    runs[0].step(9)
    runs[1].step(4)
    for d in dashes:
        d.refresh(force_slow=True)
    a, b = (_traces(d)[("raw", "loss")] for d in dashes)
    assert len(a.x) == 9 and len(b.x) == 4
    np.testing.assert_allclose(a.y, [1 / s for s in range(1, 10)])
    np.testing.assert_allclose(b.y, [1 / s + 5 for s in range(1, 5)])
    assert POOLING[9] in dashes[0].dag.layout.title.text and POOLING[9] in dashes[1].dag.layout.title.text
    runs[1].step(3)
    dashes[0].refresh()
    dashes[1].refresh()
    assert len(_traces(dashes[0])[("raw", "loss")].x) == 9
    assert len(_traces(dashes[1])[("raw", "loss")].x) == 7
    dashes[0].close()
    runs[1].step(2)
    dashes[1].refresh()
    assert len(_traces(dashes[1])[("raw", "loss")].x) == 9
    for r in runs:
        r.stop()


def test_auto_refresh_runs_on_the_event_loop_and_close_leaves_the_run_going():
    gate = threading.Event()
    run = Run(ToyJob(steps=40, gate=gate), store=False)
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        dash = RunDashboard(run)  # a running loop: the refresher starts itself
        dash.interval_s = 0.05
        assert dash.refreshing
        run.start()
        gate.set()
        for _ in range(200):  # nobody calls refresh(): the task does
            await asyncio.sleep(0.05)
            if len(_traces(dash)[("raw", "loss")].x) >= 10:
                break
        seen["points"] = len(_traces(dash)[("raw", "loss")].x)
        gate.clear()  # hold the run mid-way, then close the view
        await asyncio.sleep(0.1)
        dash.close()
        await asyncio.sleep(0.1)
        seen["refreshing"] = dash.refreshing
        seen["frozen"] = len(dash._x["loss"])
        gate.set()
        while run.status not in ("finished", "failed"):
            await asyncio.sleep(0.05)
        seen["after"] = len(dash._x["loss"])

    asyncio.run(scenario())
    assert seen["points"] >= 10
    assert seen["refreshing"] is False
    assert run.status == "finished" and run.job.step_count == 40  # the run went on without its view
    assert seen["after"] == seen["frozen"]  # and the closed view no longer read events


def test_step_input_is_validated_inline_instead_of_raising():
    run = Run(ToyJob(steps=10), store=False)
    dash = RunDashboard(run, auto_refresh=False)
    assert dash.step(0) is False
    assert "n: expected a positive whole number" in dash.message.value and "#c62828" in dash.message.value
    assert dash.step(2.5) is False
    assert run.status == "created"
    dash.step_n.value = -3
    dash.buttons["step"].click()
    assert "n: expected" in dash.message.value
    dash.step_n.value = 3
    dash.buttons["step"].click()
    run.wait(0.5)
    for _ in range(100):
        if run.status == "paused":
            break
        run.events.wait(run.events.last_seq, 0.1)
    dash.refresh()
    assert dash.message.value == ""
    assert run.job.step_count == 3 and "paused" in dash.status.value
    dash.buttons["stop"].click()
    run.wait(10)
    assert dash.step(1) is False and "stopped" in dash.message.value


def test_final_ranking_event_gives_the_scatter_and_tau_against_the_dashboard_benchmark():
    run = Run(ToyJob(steps=5, rank=True), store=False)
    dash = RunDashboard(run, benchmark="cifar10", auto_refresh=False)
    # its config promises no ranking: no empty ranking box until one arrives
    assert dash._ranking_box not in dash._row2.children and dash._summary_box in dash._row2.children
    run.start()
    run.wait(10)
    dash.refresh(force_slow=True)
    bm = benchmarks.get("pooling", "cifar10")
    truth = [bm.query(a) for a in POOLING]
    est = [t if i % 2 else -t for i, t in enumerate(truth)]
    tau = stats.kendalltau(est, truth).statistic
    assert f"Kendall τ = {tau:.3f}" in dash.ranking_fig.layout.title.text
    assert dash.ranking is not None and len(dash.ranking) == 36
    assert f"{tau:.3f}" in dash.summary.value
    roles = [t.meta["role"] for t in dash.ranking_fig.data]
    assert roles == ["all", "topk", "selected"]
    assert dash._row2.children == (dash._dag_box, dash._ranking_box)


class RankingToyJob(ToyJob):
    """Emits a periodic ranking every 4 steps (tau rising by 0.1, top-10 tau undefined at step 8)
    and an alarm at step 6, as the trainers do."""

    def step(self) -> dict[str, Any]:
        out = super().step()
        k = self.step_count
        if k % 4 == 0:
            top10 = None if k == 8 else -k / 40
            self.emit("ranking", summary={"kendall_tau": k / 40, "kendall_tau_top10": top10}, periodic=True)
        if k == 6:
            self.emit("alarm", rule="skip", message="4 skip connections <in the cell>", value=4.0, threshold=3.0)
        return out


def test_periodic_rankings_draw_tau_vs_step_and_alarms_raise_the_banner():
    run = Run(RankingToyJob(steps=12), store=False)
    dash = RunDashboard(run, benchmark=None, auto_refresh=False)
    assert dash.tau_box.layout.display == "none" and dash.alarm.layout.display == "none"
    run.step(5)
    dash.refresh()
    assert dash.tau_box.layout.display == "flex" and dash.alarm.layout.display == "none"
    run.step(7)
    dash.refresh()
    tau = {t.meta["role"]: t for t in dash.tau_fig.data}
    assert list(tau["tau"].x) == [4.0, 8.0, 12.0]
    np.testing.assert_allclose(tau["tau"].y, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(tau["tau_top10"].y, [-0.1, np.nan, -0.3])  # a gap where it is undefined
    assert "now +0.300, n=3" in dash.tau_fig.layout.title.text
    assert "<b>0.300</b>" in dash.summary.value
    # the banner: rule, step, and the message escaped
    assert dash.alarm.layout.display == "block"
    assert "<b>skip</b> at step 6: 4 skip connections &lt;in the cell&gt;" in dash.alarm.value
    # periodic rankings carry no table: the ranking scatter keeps its note
    assert dash.ranking is None


def test_real_trainer_run_feeds_the_dashboard(tmp_path):
    from nasbench_lab.training import Trainer

    job = Trainer(space="pooling", dataset="digits", steps=10, batch_size=16, val_batch_size=32, rank_images=16,
                  device="cpu")
    store = RunStore(tmp_path / "runs.sqlite")
    run = Run(job, store=store, snapshot_every=5)
    dash = RunDashboard(run, benchmark="cifar10", auto_refresh=False)
    run.start()
    assert run.wait(120) == "finished"
    dash.refresh(force_slow=True)
    steps = run.events.since(0, kinds="step")
    loss = _traces(dash)[("raw", "loss")]
    assert list(loss.x) == list(range(1, 11))
    np.testing.assert_allclose(loss.y, [e.data["loss"] for e in steps])
    assert steps[-1].data["arch"] in dash.dag.layout.title.text
    assert sum(dash.panel.data[0].y) == 10  # uniform sampler counts
    assert dash.ranking is not None and set(dash.ranking["arch"]) == set(POOLING)
    assert "Kendall τ" in dash.ranking_fig.layout.title.text

    # the browser replays the same run from the store
    browser = RunBrowser(store)
    assert browser.runs["id"].tolist() == [run.run_id]
    assert browser.current == run.run_id  # the newest run opens by itself
    curves = {(t.meta["role"], t.meta["metric"]): t for t in browser.curves.data}
    np.testing.assert_allclose(curves[("raw", "loss")].y, [e.data["loss"] for e in steps])
    assert "finished" in browser.header.value and "uniform" in browser.header.value
    assert "config" in browser.record.value and sum(browser.panel.data[0].y) == 10


def test_run_browser_lists_runs_and_shows_failures_inline(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    ok = Run(ToyJob(steps=6), store=store, name="toy-ok")
    ok.start()
    ok.wait(10)
    bad = Run(ToyJob(steps=6, fail_at=2), store=store, name="toy-bad")
    bad.start()
    bad.wait(10)
    browser = RunBrowser(store)
    assert len(browser.select.options) == 2
    assert browser.open(ok.run_id)
    metrics = store.metrics(ok.run_id)
    curves = {(t.meta["role"], t.meta["metric"]): t for t in browser.curves.data}
    np.testing.assert_allclose(curves[("raw", "reward")].y, metrics["reward"].to_numpy())
    assert browser.error.layout.display == "none"
    browser.select.value = bad.run_id  # selecting opens
    assert browser.current == bad.run_id
    assert browser.error.layout.display == "block" and "toy failure at step 2" in browser.error.value
    assert browser.open("no-such-run") is False
    assert "no run 'no-such-run'" in html.unescape(browser.message.value)
    with pytest.raises(ValueError, match="store: expected a RunStore"):
        RunBrowser(store=42)


# ----------------------------------------------------------------------------- explorer
def test_explorer_dropdowns_follow_the_constrained_pooling_tree():
    ex = ArchitectureExplorer("pooling")
    bm = benchmarks.get("pooling", "cifar10")
    assert str(ex.arch) == "[4,3,3]"
    assert [d.value for d in ex.level_dropdowns] == [0, 0, 0, 1, 0, 0, 1, 0, 0]  # pool before blocks 4, 7
    assert f"{bm.query('[4,3,3]'):.2f}%" in ex.info.value and f"{bm.rank('[4,3,3]')} / 36" in ex.info.value
    ex.level_dropdowns[3].value = 0  # block 4 keeps the resolution: the second pooling must come later
    assert str(ex.arch) == "[7,2,1]"
    assert [v for _, v in ex.level_dropdowns[8].options] == [1]  # the last pooling is forced
    assert ex.text.value == "[7,2,1]"
    assert "[7,2,1]" in ex.dag.layout.title.text
    assert ex.distribution.layout.shapes[0].x0 == pytest.approx(bm.query("[7,2,1]"))
    # neighbours: best first, with accuracies; clicking one moves there
    rows = ex.neighbour_rows()
    assert {r["arch"] for r in rows} == {str(a) for a in spaces.get("pooling").neighbours(ex.arch)}
    assert [r["accuracy"] for r in rows] == sorted((r["accuracy"] for r in rows), reverse=True)
    ex.neighbour_buttons[0].click()
    assert str(ex.arch) == rows[0]["arch"]


def test_explorer_text_input_errors_show_inline_and_datasets_switch():
    ex = ArchitectureExplorer("nb201", dataset="cifar100")
    before = ex.arch
    ex.text.value = "|nor_conv_3x3~0|+|bogus~0|"
    assert ex.arch == before
    assert "nb201:" in ex.message.value and "#c62828" in ex.message.value
    target = "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    ex.text.value = target
    assert str(ex.arch) == target and ex.message.value == ""
    assert [d.value for d in ex.level_dropdowns] == list(ex.arch.genes)
    c100 = benchmarks.get("nb201", "cifar100").query(target)
    assert f"{c100:.2f}%" in ex.info.value
    ex.dataset_dropdown.value = "imagenet16-120"
    img = benchmarks.get("nb201", "imagenet16-120").query(target)
    assert f"{img:.2f}%" in ex.info.value and "imagenet16-120" in ex.distribution.layout.title.text
    assert len(ex.neighbour_buttons) == 24
    with pytest.raises(ValueError, match="dataset: nb201 has ground truth for"):
        ArchitectureExplorer("nb201", dataset="mnist")


# ----------------------------------------------------------------------------- launch
def test_launch_builds_a_recorded_run_and_an_unstarted_dashboard():
    assert nl.widgets.launch is launch
    dash = launch(space="pooling", method="uniform", dataset="digits", steps=4, batch_size=16,
                  val_batch_size=32, rank_at_end=False, device="cpu")
    assert isinstance(dash, RunDashboard)
    assert dash.run.status == "created" and dash.run.job.total_steps == 4
    rec = dash.run.store.run(dash.run.run_id)
    assert rec["config"]["method"] == "uniform" and rec["status"] == "created"
    dash.run.step(2)
    dash.refresh()
    assert len(_traces(dash)[("raw", "loss")].x) == 2
    dash.run.stop()
    with pytest.raises(ValueError, match="steps: expected a positive whole number"):
        launch(steps=0)


def test_launcher_form_reports_a_bad_budget_inline():
    form = Launcher(steps="lots")
    assert form.create() is None
    assert "steps: expected a positive whole number" in form.message.value
    assert form.output.children == ()
    form.steps.value = "3"
    form.start.value = False
    form.job_kwargs = {"batch_size": 16, "val_batch_size": 32, "rank_at_end": False, "device": "cpu"}
    dash = form.create()
    assert dash is not None and form.message.value == ""
    assert form.output.children == (dash.widget,) and dash.run.job.total_steps == 3
    dash.run.stop()


def test_launcher_offers_chosen_methods_with_their_default_options():
    with pytest.raises(ValueError, match="methods: unknown 'bogus'"):
        Launcher(methods=["uniform", "bogus"])
    with pytest.raises(ValueError, match="is not among methods"):
        Launcher(method="darts", methods=["uniform", "mixture"])
    form = Launcher(method="mixture", methods=["uniform", "mixture", "density"], steps=4, start=False,
                    options={"mixture": {"models": 2}, "density": {"representation": "gradient"}},
                    batch_size=8, val_batch_size=16, rank_at_end=False, device="cpu")
    assert form.method.options == ("uniform", "mixture", "density")
    assert json.loads(form.options.value) == {"models": 2} and "mixture takes: models, beta" in form.hint.value
    form.method.value = "density"
    assert json.loads(form.options.value) == {"representation": "gradient"} and "representation" in form.hint.value
    form.method.value = "uniform"
    assert form.options.value == "{}" and "uniform takes no options" in form.hint.value
    # bad JSON, a non-object and an unknown option are reported inline
    form.method.value = "mixture"
    for text, expected in (("{models: 2}", "options: not valid JSON"), ("[2]", "expected a JSON object"),
                           ('{"modles": 2}', "takes no option 'modles'; valid: models")):
        form.options.value = text
        assert form.create() is None and expected in html.unescape(form.message.value)
    form.options.value = '{"models": 3}'
    dash = form.create()
    assert dash is not None and form.message.value == ""
    assert dash.run.job.sampler.models == 3 and dash.method == "mixture"
    dash.run.step(2)
    dash.refresh(force_slow=True)
    assert "mixture of 3 supernets" in dash.panel.layout.title.text
    dash.run.stop()


def test_a_resumed_run_shows_its_earlier_steps_from_the_store(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    first = Run(ToyJob(steps=20), store=store)
    first.step(6)
    first.stop()
    # what Run.resume builds: the same run id, the job restored at step 6, a fresh event log
    job = ToyJob(steps=20)
    job.step_count = 6
    again = Run(job, store=store, run_id=first.run_id)
    dash = RunDashboard(again, auto_refresh=False)
    assert list(_traces(dash)[("raw", "loss")].x) == [1, 2, 3, 4, 5, 6]
    again.step(2)
    dash.refresh()
    tr = _traces(dash)[("raw", "loss")]
    assert list(tr.x) == [1, 2, 3, 4, 5, 6, 7, 8]
    np.testing.assert_allclose(tr.y, [1 / s for s in range(1, 9)])
    again.stop()


class SearchLikeJob(ToyJob):
    """Reports what a black-box search reports: no loss, a regret that falls."""

    def step(self) -> dict[str, Any]:
        self.step_count += 1
        return {"query": self.step_count, "acc": 80 + self.step_count, "regret": 10.0 / self.step_count,
                "arch": POOLING[self.step_count]}


def test_curves_follow_what_the_job_reports():
    run = Run(SearchLikeJob(steps=6), store=False)
    dash = RunDashboard(run, auto_refresh=False)
    fw = dash.curves
    run.step(6)
    dash.refresh()
    assert dash.metrics == ("regret", "acc") and dash.curves is fw
    tr = _traces(dash)
    np.testing.assert_allclose(tr[("raw", "regret")].y, [10.0 / s for s in range(1, 7)])
    assert list(tr[("raw", "acc")].y) == [81, 82, 83, 84, 85, 86]
    assert [a.text for a in fw.layout.annotations][:2] == ["regret", "acc"]


def test_dashboard_rejects_what_is_not_a_run():
    with pytest.raises(ValueError, match="run: expected a nasbench_lab.runs.Run"):
        RunDashboard(ToyJob())
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(ValueError):
        RunDashboard(frame)


def test_widget_errors_read_as_the_cli_says_them(tmp_path, monkeypatch):
    """One boundary (nasbench_lab.errors.describe): a resource error (a workspace that is a file)
    shows inline instead of escaping the callback, and a repeated option key is refused."""
    (tmp_path / "ws-file").write_text("not a folder")
    monkeypatch.setenv("NASBENCH_LAB_HOME", str(tmp_path / "ws-file"))
    form = Launcher(steps=3, start=False, batch_size=8, val_batch_size=16, rank_at_end=False, device="cpu")
    assert form.create() is None
    shown = html.unescape(form.message.value)
    assert "NASBENCH_LAB_HOME" in shown and "is a file, not a folder" in shown and "#c62828" in form.message.value
    monkeypatch.setenv("NASBENCH_LAB_HOME", str(tmp_path / "ws"))
    form.method.value = "mixture"
    form.options.value = '{"models": 2, "models": 3}'
    assert form.create() is None
    assert "'models' appear more than once" in html.unescape(form.message.value)


def test_eta_is_remaining_steps_over_the_recent_rate_as_minutes_and_seconds():
    from nasbench_lab.runs.progress import eta_text

    assert eta_text(100, 2.0) == "0:50" and eta_text(125, 1 / 3) == "6:15" and eta_text(7200, 1.0) == "2:00:00"
    assert eta_text(10, None) is None and eta_text(10, 0.0) is None
    gate = threading.Event()  # holds the run inside its first step: running, 0 of 100 done
    run = Run(ToyJob(steps=100, gate=gate), store=False)
    dash = RunDashboard(run, auto_refresh=False)
    try:
        run.start()
        deadline = time.monotonic() + seconds(10)
        while run.status != "running" and time.monotonic() < deadline:
            time.sleep(0.01)
        dash._step_times = [(1000.0, 10), (1010.0, 30)]  # 20 steps in 10 s: 2 steps/s
        dash._update_status()
        assert "0 / 100 steps · 2.0 steps/s · <b>0:50</b> left to the last step" in dash.progress_text.value
    finally:
        gate.set()
        run.stop()
        run.wait(seconds(10))
    dash._update_status()
    assert "left to the last step" not in dash.progress_text.value  # no ETA once it is not running


def test_one_true_rank_row_when_the_whole_space_was_ranked():
    from nasbench_lab.widgets._common import summary_rows

    rows = dict(summary_rows({"kendall_tau": 0.25, "selected_true_rank": 3, "selected_truth_rank_in_space": 3, "n": 36}))
    assert [k for k in rows if "true rank" in k] == ["selected: true rank (space)"] and rows["Kendall τ (all ranked)"] == "0.250"
    rows = dict(summary_rows({"selected_true_rank": 2, "selected_truth_rank_in_space": 9, "n": 12}))  # a sample of 12
    assert rows["selected: true rank (ranked set)"] == "2" and rows["selected: true rank (space)"] == "9"
