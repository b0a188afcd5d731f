"""The command line: real commands, real output."""

from __future__ import annotations

import json
import re

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
    assert re.search(r"kendall_tau=", out) and "mean ± std" in out
    code, out, _ = run_cli(capsys, "runs")
    assert out.count("finished") == 2


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
    table = out.split("Kendall tau vs step (--rank-every):")[1].split("ranking of 36")[0]
    assert re.search(r"^\s*5\s+[+-]\d\.\d{3}", table, re.M), table
    assert "ranking of 36 architectures" in out and "kendall_tau=" in out
    code, out, _ = run_cli(capsys, "runs")
    assert f"pooling/{method}/seed0" in out


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
