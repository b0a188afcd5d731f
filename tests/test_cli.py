"""The command line: real commands, real output."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from nasbench_lab import benchmarks
from nasbench_lab.cli import main
from nasbench_lab.training.groundtruth import build_groundtruth


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_spaces_lists_sizes(capsys):
    code, out, _ = run_cli(capsys, "spaces")
    assert code == 0
    assert re.search(r"pooling\s+36\b", out) and re.search(r"nb201\s+15,625\b", out)
    assert re.search(r"nbmacro\s+6,561\b", out)


def test_show_pooling_best_and_nb201_full_conv_cell(capsys):
    code, out, _ = run_cli(capsys, "show", "pooling", "[7,1,2]")
    assert code == 0
    assert re.search(r"cifar10\s+accuracy 92\.01 %\s+rank 1 of 36", out)
    assert "params       272,474" in out
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    code, out, _ = run_cli(capsys, "show", "nb201", cell)
    assert code == 0
    assert "params       1,531,546" in out
    assert re.search(r"cifar10\s+accuracy 93\.76 %\s+rank \d+ of 15625", out)
    # a cell has 6 edges x 4 other ops = 24 neighbours; the listing says it shows 10 of them
    assert "24 neighbours (one decision changed), the 10 most accurate listed (--neighbours 24 lists all):" in out
    listed = [line for line in out.splitlines()[-11:] if line.strip().startswith("|")]
    assert len(listed) == 10
    code, out, _ = run_cli(capsys, "show", "pooling", "[4,3,3]")
    assert "4 neighbours (one decision changed), all 4 listed:" in out


def test_bad_input_names_the_space_and_an_example(capsys):
    code, _, err = run_cli(capsys, "show", "pooling", "[4,3,4]")
    assert code == 2
    assert "pooling" in err and "[4,3,3]" in err
    code, _, err = run_cli(capsys, "run", "--method", "bogus", "--steps", "2")
    assert code == 2 and "unknown method 'bogus'" in err and "uniform" in err
    code, _, err = run_cli(capsys, "run", "--space", "nope", "--steps", "2")
    assert code == 2 and "valid:" in err


def test_groundtruth_is_saved_resumable_and_found_by_benchmarks(tmp_path):
    # a partial build replaces the served table only when asked (overwrite=True; see test_trust.py)
    bench = build_groundtruth("pooling", "digits", epochs=0.05, seeds=[0], limit=2, progress=False, batch_size=32,
                              overwrite=True)
    assert len(bench) == 2 and bench.path.is_file() and bench.attrs["saved"]
    again = benchmarks.get("pooling", dataset="digits")
    assert again.query("[1,1,8]") == pytest.approx(bench.query("[1,1,8]"))
    assert 0 <= again.query("[1,1,8]") <= 100
    # the partial file lets a re-run skip finished networks: same numbers without training again
    partial = bench.path.with_suffix(".partial.csv")
    assert len(partial.read_text().strip().splitlines()) == 3
    rebuilt = build_groundtruth("pooling", "digits", epochs=0.05, seeds=[0], limit=2, progress=False, overwrite=True)
    assert rebuilt.table["acc"].tolist() == bench.table["acc"].tolist()
    assert len(partial.read_text().strip().splitlines()) == 3


def test_run_prints_ranking_against_groundtruth(capsys):
    build_groundtruth("pooling", "digits", epochs=0.05, seeds=[0], limit=3, progress=False, batch_size=32,
                      overwrite=True)
    code, out, err = run_cli(capsys, "run", "--space", "pooling", "--method", "uniform", "--steps", "4",
                             "--batch-size", "8", "--rank-images", "32", "--seed", "0", "1")
    assert code == 0, err
    assert out.count("ranking of 36 architectures") == 2
    # the ranking table has the truth columns for the 3 architectures in the tiny ground truth
    taus = re.findall(r"Kendall τ \(all ranked\) ([+-]?\d\.\d{3}|nan)", out)  # nan: 3 ranked, all tied
    assert len(taus) == 2 and "mean ± std" in out
    code, out, _ = run_cli(capsys, "runs")
    assert out.count("finished") == 2
    # a terminal-wide table: minutes, not nanoseconds; method, space and τ columns
    assert all(len(line) <= 100 for line in out.splitlines()), out
    header, *rows = out.splitlines()
    assert re.search(r"\bid\s+method\s+space\s+status\s+progress\s+τ \(all ranked\)\s+started \(UTC\)", header)
    rows = [r for r in rows if "finished" in r]
    found = [re.search(r"uniform\s+pooling/digits\s+finished\s+4/4\s+([+-]\d\.\d{3}\s+)?\d{4}-\d\d-\d\d \d\d:\d\d$", r)
             for r in rows]
    assert len(found) == 2 and all(found), rows
    shown = sorted(float(m.group(1)) if m.group(1) else float("nan") for m in found)
    assert np.allclose(shown, sorted(float(t) for t in taus), equal_nan=True)


def test_bench_json_prints_only_the_json_object_on_stdout(capsys):
    """``bench --json`` stdout is one JSON object (the table goes to stderr). The cheap budget
    section keeps this fast; the trainer section runs in scripts/gpu-check's smoke test."""
    code, out, err = run_cli(capsys, "bench", "--json", "--quick", "--section", "budget")
    assert code == 0
    result = json.loads(out)
    assert "[budget]" in err and "[budget]" not in out
    assert result["quick"] is True and result["device"] == "cpu"
    rates = {k: v for k, v in result.items() if k.endswith("_per_s")}
    assert rates and all(v > 0 for v in rates.values()), result


@pytest.mark.parametrize("method,options", [
    ("mcts-learned", {"warmup": 0.3, "uct_warmup": 0.2}),
    ("density", {"representation": "encoding", "temperature": 2.0}),
    ("mixture", {"models": 2}),
])
def test_run_thesis_samplers_with_options_and_tau_vs_step(capsys, method, options):
    code, out, err = run_cli(capsys, "run", "--method", method, "--steps", "10", "--batch-size", "8",
                             "--rank-images", "16", "--rank-every", "5", "--options", json.dumps(options))
    assert code == 0, err
    # two periodic rankings (steps 5 and 10 minus the last, which is the final ranking) then the final table
    table = out.split("Kendall τ vs step (--rank-every):")[1].split("ranking of 36")[0]
    assert re.search(r"^\s*5\s+[+-]\d\.\d{3}", table, re.M), table
    assert "ranking of 36 architectures" in out and "Kendall τ (all ranked)" in out
    code, out, _ = run_cli(capsys, "runs")
    assert re.search(rf"{method}\s+pooling/digits\s+finished", out), out


def test_run_rejects_options_a_method_does_not_take(capsys):
    code, _, err = run_cli(capsys, "run", "--method", "mixture", "--steps", "2", "--options", '{"bogus": 1}')
    assert code == 2 and "bogus" in err


def test_list_flags_take_spaces_or_commas(capsys):
    code, out, err = run_cli(capsys, "compare-samplers", "--methods", "uniform,fair", "--seeds", "0", "--steps", "3",
                             "--batch-size", "8", "--val-batch-size", "16", "--rank-images", "8")
    assert code == 0, err
    assert re.search(r"^uniform\s", out, re.M) and re.search(r"^fair\s", out, re.M)
    code, _, err = run_cli(capsys, "run", "--method", "uniform", "--steps", "2", "--seeds", "0,x")
    assert code == 2 and "--seed: expected int values separated by spaces or commas" in err


# ---------------------------------------------------------------------------- the error boundary (issue 23, section 3)
def test_describe_maps_exceptions_by_base_class_to_a_message_and_an_exit_code():
    import errno

    from nasbench_lab.errors import describe
    from nasbench_lab.runs import RunFailed

    class Owned(ValueError):  # e.g. another helper's run-ownership error: fits by its base class
        pass

    class Bounded(RuntimeError):
        pass

    assert describe(ValueError("--steps: expected a positive integer")) == ("--steps: expected a positive integer", 2)
    assert describe(Owned("run x: owned by pid 7")) == ("run x: owned by pid 7", 2)
    assert describe(KeyError("no run 'x'")) == ("no run 'x'", 2)  # without KeyError's extra quotes
    assert describe(FileNotFoundError(errno.ENOENT, "No such file or directory", "/d/x.csv")) == (
        "/d/x.csv: No such file or directory", 2)
    msg, code = describe(OSError(errno.ENOSPC, "No space left on device", "/ws/runs.sqlite"))
    assert code == 1 and msg.startswith("/ws/runs.sqlite: No space left on device (the disk is full")
    msg, code = describe(PermissionError(errno.EROFS, "Read-only file system", "/ro/ws"))
    assert code == 1 and "/ro/ws: Read-only file system" in msg and "NASBENCH_LAB_HOME" in msg
    assert describe(RecursionError("maximum recursion depth exceeded"))[1] == 1
    assert "too deeply nested" in describe(RecursionError())[0]
    assert describe(Bounded("CUDA out of memory")) == ("CUDA out of memory", 1)
    try:
        try:
            raise ValueError("lr: expected a finite number")
        except ValueError as cause:
            raise RunFailed("run 20250101-x failed:\nTraceback (most recent call last):\n  ...") from cause
    except RunFailed as exc:
        assert describe(exc) == ("run 20250101-x failed: ValueError: lr: expected a finite number", 1)
    assert describe(KeyboardInterrupt()) == ("interrupted", 130)
    msg, code = describe(TypeError("unsupported operand"))
    assert code == 1 and "internal error (TypeError: unsupported operand)" in msg and "--debug" in msg
    assert len(describe(ValueError("x" * 100_000))[0]) <= 2000  # an echoed input is cut


@pytest.mark.parametrize("kind", ["file", "dangling link"])
def test_a_workspace_that_is_not_a_folder_is_a_message_naming_it(tmp_path, monkeypatch, capsys, kind):
    ws = tmp_path / "ws"
    if kind == "file":
        ws.write_text("")
    else:
        ws.symlink_to(tmp_path / "nowhere")
    monkeypatch.setenv("NASBENCH_LAB_HOME", str(ws))
    code, _, err = run_cli(capsys, "runs")
    assert code == 1
    assert f"NASBENCH_LAB_HOME: {ws} is {'a file' if kind == 'file' else 'a link to nowhere'}, not a folder" in err
    assert "Traceback" not in err


def test_os_errors_name_the_path_and_what_the_os_said(tmp_path, monkeypatch, capsys):
    import errno

    from nasbench_lab.runs import RunStore

    def full(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(RunStore, "runs", full)
    code, _, err = run_cli(capsys, "runs")
    assert code == 1 and "runs.sqlite: No space left on device (the disk is full" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "report", "x", "--html", str(tmp_path / ("a" * 300 + ".html")))
    assert code == 1 and "File name too long" in err and "Traceback" not in err


def test_runtime_and_recursion_errors_and_ctrl_c_have_their_exit_codes(monkeypatch, capsys):
    import nasbench_lab.cli as cli

    code, _, err = run_cli(capsys, "run", "--steps", "2", "--options", "[" * 5000 + "]" * 5000)
    # the bounded JSON reader refuses it before any recursion: bad input, the limit named
    assert code == 2 and "nested more than 100 levels" in err and "Traceback" not in err

    def boom(args):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
    monkeypatch.setattr(cli, "cmd_spaces", boom)
    code, _, err = run_cli(capsys, "spaces")
    assert code == 1 and err.strip() == "nasbench-lab spaces: error: CUDA out of memory. Tried to allocate 20.00 GiB"
    code, _, err = run_cli(capsys, "--debug", "spaces")  # the traceback is kept for --debug
    assert code == 1 and "Traceback (most recent call last)" in err and "in boom" in err

    def ctrl_c(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "cmd_spaces", ctrl_c)
    code, _, err = run_cli(capsys, "spaces")
    assert code == 130 and "interrupted" in err and "Traceback" not in err


@pytest.mark.parametrize("argv,expected", [
    (("run", "--steps", "2", "--data-root", "/tmp"), "data_root (--data-root): the digits ship inside the package"),
    (("groundtruth", "--limit", "1", "--data-root", "/tmp"), "data_root (--data-root): the digits ship inside"),
    (("run", "--steps", "2", "--store", ""), "--store: expected an SQLite file path, got ''"),
    (("runs", "--store", " "), "--store: expected an SQLite file path"),
    (("run", "--steps", "10", "--rank-every", "50"), "rank_every (--rank-every): 50 is more than steps=10"),
    (("run", "--steps", "2", "--batch-size", "8", "--rank-images", "5000"),
     "rank_images (--rank-images): 5000 is more than the 719 val images of digits"),
    (("compare-samplers", "--methods", "uniform", "--seeds", "0", "--steps", "2", "--rank-images", "5000"),
     "5000 is more than the 719 val images"),
    (("proxies", "--space", "pooling", "--archs", "100", "--batch-size", "4"),
     "archs (--archs): 100 is more than the 36 architectures in the pooling/digits table"),
    (("demo", "--epochs", "1e-9", "--archs", "[4,3,3]"), "1e-09 epochs of 1437 images in batches of 64 is less than one"),
    (("run", "--steps", "2", "--options", '{"warmup": 0.1, "warmup": 0.2}'), "the key(s) 'warmup' appear more than once"),
    (("search", "--space", "pooling", "--options", '{"rea": {"population_size": 5, "population_size": 9}}'),
     "the key(s) 'population_size' appear more than once"),
    (("run", "--steps", "10", "--steps", "2"), "--steps: given 2 times (--steps 10, --steps 2)"),
    (("run", "--steps", "2", "--seed", "0", "--seeds", "1"), "--seed: given 2 times (--seed 0, --seeds 1)"),
    (("run", "--step=3", "--steps", "2"), "--steps: given 2 times (--step=3, --steps 2)"),
    (("search", "--space", "pooling", "--objectives", "acc,flops", "--csv", "x.csv"), "--csv: not written by a multi"),
])
def test_values_once_ignored_clamped_or_replaced_are_errors(capsys, argv, expected):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, err
    assert expected in err and "Traceback" not in err
    assert "ranking of" not in out and "scoring" not in err  # said before the work


def test_repeatable_flags_and_flags_after_the_separator_are_not_repeats(capsys):
    from nasbench_lab.cli import _repeated_flags, build_parser

    parser = build_parser()
    _repeated_flags(parser, "search", ["search", "--strategy", "rea", "--strategy", "ls"])  # action="extend"
    _repeated_flags(parser, "lab", ["lab", "--port", "9000", "--", "--port", "9001"])  # JupyterLab's own
    _repeated_flags(parser, "groundtruth", ["groundtruth", "--overwrite", "--overwrite"])  # a switch
    with pytest.raises(ValueError, match="--port: given 2 times"):
        _repeated_flags(parser, "lab", ["lab", "--port", "9000", "--port=9001"])


def test_a_negative_seed_is_said_in_our_words(capsys):
    for argv in (("proxies", "--seed", "-1"), ("latency", "--seed", "-1")):
        with pytest.raises(SystemExit) as exc:
            main(list(argv))
        err = capsys.readouterr().err
        assert exc.value.code == 2 and "argument --seed: expected a seed >= 0" in err and "(e.g. 0)" in err
        assert "random_state" not in err
    code, _, err = run_cli(capsys, "run", "--steps", "2", "--seed", "4294967296")  # scikit-learn's split takes < 2**32
    assert code == 2 and "--seed: expected an integer in 0..4294967295" in err and "random_state" not in err


def test_proxies_checks_its_csv_before_scoring_and_leaves_no_temp_file(tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, err = run_cli(capsys, "proxies", "--space", "pooling", "--archs", "3", "--batch-size", "4",
                           "--proxies", "params", "--csv", str(folder))
    assert code == 2 and f"--csv: '{folder}' is a folder" in err
    assert "scoring" not in err and sorted(p.name for p in tmp_path.iterdir()) == ["out", "workspace"]
    code, _, err = run_cli(capsys, "proxies", "--space", "pooling", "--archs", "3", "--batch-size", "4",
                           "--proxies", "params", "--csv", str(tmp_path / "missing" / "p.csv"))
    assert code == 2 and "does not exist" in err


def test_groundtruth_overwrite_with_limit_says_it_replaces_the_fuller_table(capsys):
    before = len(benchmarks.get("pooling", dataset="digits"))
    code, out, err = run_cli(capsys, "groundtruth", "--limit", "1", "--overwrite", "--epochs", "0.05", "--seeds", "1",
                             "--top", "1")
    assert code == 0, err
    assert before == 36 and len(benchmarks.get("pooling", dataset="digits")) == 1
    warning = ("WARNING: --overwrite: this build is saved as the pooling/digits benchmark although it covers 1 of "
               "the 36 architectures")
    assert warning in out and warning in err  # before the work (stdout) and after it (stderr)


def test_follow_draws_the_steps_then_the_ranking_phase(capsys):
    """`run` was silent while the supernet ranked (minutes on a CPU): the follower draws a second bar
    from the job's "phase" events."""
    import time as _time

    from nasbench_lab.runs import Job, Run
    from nasbench_lab.runs.progress import follow

    class Slow(Job):
        kind = "toy"

        def __init__(self) -> None:
            self.total_steps, self.step_count = 3, 0

        def config(self) -> dict:
            return {"steps": 3}

        def step(self) -> dict:
            self.step_count += 1
            _time.sleep(0.05)
            return {"loss": 1.0 / self.step_count}

        def finish(self) -> dict:
            for done in range(5):
                self.emit("phase", phase="ranking", done=done, total=4, periodic=False)
                _time.sleep(0.3)  # longer than the follower's poll
            return {"n": 4}

    run = Run(Slow(), store=False)
    run.start()
    follow(run, 3, "toy seed 0")
    err = capsys.readouterr().err
    assert "toy seed 0: 100%" in err and "3/3" in err
    assert re.search(r"toy seed 0: ranking: +\d+%.*\| [1-4]/4", err), err


def test_search_shows_a_progress_bar_unless_asked_not_to(capsys):
    code, _, err = run_cli(capsys, "search", "--space", "pooling", "--dataset", "cifar10", "--strategies", "random",
                           "--budget", "5", "--seeds", "1")
    assert code == 0 and re.search(r"arena: .*\d+/5", err), err
    code, _, err = run_cli(capsys, "search", "--space", "pooling", "--dataset", "cifar10", "--strategies", "random",
                           "--budget", "5", "--seeds", "1", "--no-progress")
    assert code == 0 and "arena" not in err
