"""Sweeps (nasbench_lab.sweep): one engine for many runs, on this process, a process pool and Ray.

Every task trains a real (tiny) pooling supernet on the embedded digits; the reference numbers
are the same training done plainly, without a sweep (tests/sweep_tasks.py).

Ray is started once for the module's Ray tests: ``ray.init(num_cpus=2, include_dashboard=False)``
in a temporary folder (``_temp_dir``: its session files, sockets and logs stay out of /tmp/ray),
with token authentication and usage statistics off (``RAY_AUTH_MODE=disabled``,
``RAY_USAGE_STATS_ENABLED=0``: nothing written to ~/.ray, nothing sent anywhere).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import sweep_tasks

from nasbench_lab.runs import RunStore
from nasbench_lab.sweep import ExecutorConfig, Sweep, Task, ray_available

TESTS = str(Path(__file__).parent)
STEPS = 6
needs_ray = pytest.mark.skipif(not ray_available(), reason="Ray is not installed: pip install 'nasbench_lab[ray]'")


@pytest.fixture(scope="module")
def reference():
    """The plain trainings every sweep must reproduce exactly (seed 0 and seed 1)."""
    return {seed: sweep_tasks.train_plain(seed, STEPS) for seed in (0, 1)}


@pytest.fixture(autouse=True)
def _workers_import_tests(monkeypatch):
    """Worker processes import the task functions of tests/sweep_tasks.py by name."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, *filter(None, [os.environ.get("PYTHONPATH")])]))


def _faulty_tasks(tmp_path: Path, ckpt_dir: Path) -> list[Task]:
    return [Task("ok", "sweep_tasks:train", {"seed": 1, "steps": STEPS}),
            Task("killed", "sweep_tasks:train", {"seed": 0, "steps": STEPS, "crash_after": str(tmp_path / "killed-once"),
                                                  "wait_for": str(ckpt_dir / "killed" / "last.pt")}),
            Task("raises", "sweep_tasks:train", {"seed": 0, "steps": STEPS, "fail_at": 3})]


def _check_faults(sweep: Sweep, store: RunStore, reference: dict) -> None:
    """A killed worker continued from its checkpoint to the same numbers; a raising run is
    recorded with its traceback; every result exactly once."""
    res = sweep.run()
    assert list(res) == ["ok", "killed"]
    assert res["ok"] == reference[1]
    assert res["killed"] == reference[0]  # resumed at step 2 of 6, the same trajectory
    st = sweep.states["killed"]
    assert st.attempts == 2 and st.resumed_from == 2 and len(st.retries) == 1
    assert sweep.states["ok"].attempts == 1
    assert "ValueError: a deliberate failure at step 3" in sweep.failed["raises"]
    runs = store.runs().set_index("id")
    assert sorted(runs.index) == ["killed", "ok", "raises"]  # one row each, nothing duplicated
    assert runs.loc["ok", "status"] == runs.loc["killed", "status"] == "finished"
    assert runs.loc["raises", "status"] == "failed"
    assert "a deliberate failure" in store.run("raises")["error"]
    assert store.run("killed")["summary"]["sweep_result"] == reference[0]
    m = store.metrics("killed")
    assert list(m.index) == list(range(1, STEPS + 1))  # the metrics of both attempts, every step
    assert store.metrics("ok")["loss"].iloc[-1] == pytest.approx(reference[1]["loss"])


def test_pool_retries_a_killed_worker_and_records_a_failure(tmp_path, reference):
    ck = tmp_path / "ckpt"
    store = RunStore(tmp_path / "runs.sqlite")
    sweep = Sweep(_faulty_tasks(tmp_path, ck), ExecutorConfig(workers=2), store=store, checkpoint_dir=ck)
    _check_faults(sweep, store, reference)


def test_resume_reads_back_finished_runs_and_continues_a_stopped_one(tmp_path, reference):
    store = RunStore(tmp_path / "runs.sqlite")
    starts = tmp_path / "starts"
    tasks = [Task(f"s{seed}", "sweep_tasks:train", {"seed": seed, "steps": STEPS, "starts": str(starts)})
             for seed in (0, 1)]
    first = Sweep(tasks, store=store, on_result=lambda task, _: first.stop())  # Ctrl-C after the first result
    with pytest.raises(KeyboardInterrupt):
        first.run()
    assert list(first.results) == ["s0"] and first.states["s1"].status == "queued"
    assert store.run("s0")["status"] == "finished"
    again = Sweep(tasks, store=store)
    assert again.run() == {"s0": reference[0], "s1": reference[1]}
    assert again.states["s0"].attempts == 0  # read back, not trained again
    assert sorted(p.name.split("-")[0] for p in starts.iterdir()) == ["s0", "s1"]  # each trained once
    from nasbench_lab.widgets import SweepView

    view = SweepView(again)
    assert "2 done" in view.counts.value and "0 running" in view.counts.value
    assert view.results.value.count("nbl-sweep-result") == 2 and "param_sum" in view.results.value
    assert view.runs.value.count("data-status='done'") == 2 and "6/6" in view.runs.value


def test_a_stopped_run_continues_from_its_checkpoint(tmp_path, reference):
    store = RunStore(tmp_path / "runs.sqlite")
    ck = tmp_path / "ckpt"
    task = Task("s0", "sweep_tasks:train", {"seed": 0, "steps": STEPS, "every": 2})
    first = Sweep([task], store=store, checkpoint_dir=ck)

    def stop_after_checkpoint(st, kind, payload, _orig=first._on_message):
        _orig(st, kind, payload)
        if kind == "checkpoint" and payload["step"] == 4:
            first.stop()

    first._on_message = stop_after_checkpoint
    with pytest.raises(KeyboardInterrupt):
        first.run()
    assert store.run("s0")["status"] == "stopped" and (ck / "s0" / "last.pt").is_file()
    again = Sweep([task], store=store, checkpoint_dir=ck)
    assert again.run() == {"s0": reference[0]}
    assert again.states["s0"].resumed_from == 4


def test_bad_input_is_refused_at_the_boundary():
    with pytest.raises(ValueError, match="fn must be 'module:function'"):
        Task("a", "sweep_tasks.train")
    with pytest.raises(ValueError, match="task key"):
        Task("../a", "sweep_tasks:train")
    with pytest.raises(ValueError, match="duplicate keys"):
        Sweep([Task("a", "m:f"), Task("a", "m:f")], store=False)
    with pytest.raises(ValueError, match="only with --executor ray"):
        ExecutorConfig(gpus_per_run=0.5)
    with pytest.raises(ValueError, match="executor"):
        ExecutorConfig(kind="slurm")


def test_missing_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    sweep = Sweep([Task("a", "sweep_tasks:train", {"seed": 0, "steps": 1})], ExecutorConfig("ray"), store=False)
    with pytest.raises(RuntimeError, match=r"pip install 'nasbench_lab\[ray\]'"):
        sweep.run()


# ------------------------------------------------------------------------------------------ Ray
@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    if not ray_available():
        pytest.skip("Ray is not installed: pip install 'nasbench_lab[ray]'")
    import ray

    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED", "PYTHONPATH")}
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
                      PYTHONPATH=os.pathsep.join([TESTS, *filter(None, [saved["PYTHONPATH"]])]))
    temp = tmp_path_factory.mktemp("ray")
    for attempt in range(2):  # a loaded machine can miss Ray's fixed start-up deadlines once
        try:
            ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, _temp_dir=str(temp), configure_logging=False,
                     log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt:
                raise
    yield ray
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@needs_ray
def test_ray_retries_a_killed_worker_and_records_a_failure(tmp_path, reference, ray_cluster):
    ck = tmp_path / "ckpt"
    store = RunStore(tmp_path / "runs.sqlite")
    sweep = Sweep(_faulty_tasks(tmp_path, ck), ExecutorConfig("ray"), store=store, checkpoint_dir=ck)
    _check_faults(sweep, store, reference)
    assert ray_cluster.is_initialized()  # a Ray the sweep did not start is left running


@needs_ray
def test_ray_gives_the_numbers_of_this_process_and_resumes(tmp_path, reference, ray_cluster):
    tasks = [Task(f"s{seed}", "sweep_tasks:train", {"seed": seed, "steps": STEPS}) for seed in (0, 1)]
    local = Sweep(tasks, store=False).run()
    store = RunStore(tmp_path / "runs.sqlite")
    on_ray = Sweep(tasks[:1], ExecutorConfig("ray"), store=store)
    assert on_ray.run() == {"s0": local["s0"]} == {"s0": reference[0]}
    both = Sweep(tasks, ExecutorConfig("ray"), store=store)  # s0 read back, s1 trained on Ray
    assert both.run() == local == reference_by_key(reference)
    assert both.states["s0"].attempts == 0 and both.states["s1"].attempts == 1


def reference_by_key(reference: dict) -> dict:
    return {f"s{seed}": reference[seed] for seed in (0, 1)}


@needs_ray
def test_the_commands_take_executor_ray(tmp_path, capsys, ray_cluster):
    """search and groundtruth through the CLI with --executor ray: the numbers of this process."""
    import json

    from nasbench_lab import cli

    argv = ["search", "--space", "nb201", "--strategies", "random,rea", "--budget", "15", "--seeds", "2", "--json"]
    assert cli.main(argv) == 0
    local = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert cli.main([*argv, "--executor", "ray"]) == 0
    on_ray = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert on_ray == local and len(local) == 4
    gt = ["groundtruth", "--space", "pooling", "--dataset", "digits", "--epochs", "0.05", "--seeds", "1", "--limit", "2",
          "--batch-size", "32", "--device", "cpu"]
    assert cli.main([*gt, "--executor", "ray"]) == 0
    from nasbench_lab import benchmarks

    partial = benchmarks.user_path("pooling", "digits").with_suffix(".partial.csv")
    import pandas as pd

    on_ray_rows = pd.read_csv(partial)
    partial.unlink()
    assert cli.main(gt) == 0
    local_rows = pd.read_csv(partial)
    assert len(on_ray_rows) == 2
    # the work file logs runs as they end: Ray's workers may finish them in another order
    def by_run(df: pd.DataFrame) -> pd.DataFrame:
        return df.drop(columns="seconds").sort_values(["arch", "seed"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(by_run(on_ray_rows), by_run(local_rows))


def test_reproduce_in_a_worker_gives_the_result_of_execute(tmp_path):
    """A table's run trained the way pool and Ray workers train it (runner.remote_task, the driver
    writing the store rows, checkpoint and result files) equals runner.execute's in this process,
    under the same run id and checkpoint path."""
    from nasbench_lab import reproduce
    from nasbench_lab.reproduce import runner

    spec = reproduce.plan(reproduce.get("table-5.1-pooling"), "tiny", [0], dataset="digits")[0]
    runner.execute(spec, tmp_path / "a", store=RunStore(tmp_path / "a.db"), progress=False, log=lambda s: None)
    here = runner.read_result(tmp_path / "a", spec)
    store, ck = RunStore(tmp_path / "b.db"), tmp_path / "ckpt"
    sweep = Sweep([Task(spec.key, "nasbench_lab.reproduce.runner:remote_task", {"spec": spec.to_dict()},
                        run_id=spec.key)], store=store, checkpoint_dir=ck,
                  on_result=lambda task, res: runner.keep_result(spec, tmp_path / "b", res))
    sweep.run()
    there = runner.read_result(tmp_path / "b", spec)
    assert there is not None and not sweep.failed
    skip = ("train_s", "rank_s", "bse_s")
    assert {k: v for k, v in there.items() if k not in skip} == {k: v for k, v in here.items() if k not in skip}
    rec = store.run(spec.key)
    assert rec["status"] == "finished" and rec["checkpoint"] == str(ck / spec.key / "last.pt")
    assert rec["config"] == RunStore(tmp_path / "a.db").run(spec.key)["config"]  # Run.resume accepts either
