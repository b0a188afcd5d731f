"""Real CIFAR-10 (../shared, decoded once and cached by tests/realdata.py) through every command
and dashboard that takes a dataset: tiny budgets, real images. Skipped, with the reason, where
../shared is absent (a user's clone)."""

from __future__ import annotations

import json
import re

import pandas as pd

from nasbench_lab.cli import main


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_searches_with_darts_on_real_cifar10(cifar10_root, tmp_path, capsys):
    # (the one-shot Trainer on real CIFAR-10 runs under compare-samplers below)
    code, out, err = run_cli(capsys, "run", "--space", "nb201", "--method", "darts", "--dataset", "cifar10",
                             "--data-root", cifar10_root, "--steps", "2", "--batch-size", "8", "--device", "cpu",
                             "--options", json.dumps({"channels": 4, "cells": 1, "hessian_every": 0}),
                             "--store", tmp_path / "runs.sqlite")
    assert code == 0, err
    # the summary speaks the README glossary's words: the found cell's CIFAR-10 table accuracy, a number
    assert "finished" in out and re.search(r"table acc \d+\.\d+", out), out


def test_darts_and_compare_samplers_commands_read_real_cifar10(cifar10_root, tmp_path, capsys):
    code, out, err = run_cli(capsys, "darts", "--methods", "darts", "--seeds", "0", "--steps", "1", "--channels", "4",
                             "--cells", "1", "--batch-size", "8", "--hessian-every", "0", "--device", "cpu",
                             "--dataset", "cifar10", "--data-root", cifar10_root)
    assert code == 0, err
    assert "table_acc" in out and "|" in out
    csv = tmp_path / "samplers.csv"
    code, out, err = run_cli(capsys, "compare-samplers", "--space", "pooling", "--methods", "uniform", "--seeds", "0",
                             "--steps", "2", "--batch-size", "16", "--rank-images", "32", "--dataset", "cifar10",
                             "--data-root", cifar10_root, "--device", "cpu", "--csv", csv)
    assert code == 0, err
    table = pd.read_csv(csv)
    assert table["method"].tolist() == ["uniform"] and table["kendall_tau"].between(-1, 1).all()


def test_search_with_a_proxy_evaluator_scores_real_cifar10_images(cifar10_root, capsys):
    code, out, err = run_cli(capsys, "search", "--space", "nb201", "--dataset", "cifar10", "--evaluator", "proxy",
                             "--data-root", cifar10_root, "--strategy", "random", "--budget", "2", "--seeds", "1")
    assert code == 0, err
    assert "nb201/cifar10: 1 seeds x 2 queries" in out
    code, _, err = run_cli(capsys, "search", "--space", "nb201", "--data-root", cifar10_root, "--budget", "2")
    assert code == 2 and "only the proxy and training evaluators" in err


def test_groundtruth_trains_on_real_cifar10(cifar10_root, capsys):
    code, out, err = run_cli(capsys, "groundtruth", "--space", "pooling", "--dataset", "cifar10", "--data-root",
                             cifar10_root, "--epochs", "0.002", "--seeds", "1", "--limit", "1", "--batch-size", "32",
                             "--device", "cpu")
    assert code == 0, err
    assert "1 architectures x 1 seed(s)" in out


def test_proxies_command_on_real_cifar10_writes_resumable_csv_and_prints_correlations(cifar10_root, tmp_path,
                                                                                        capsys):
    csv = tmp_path / "p.csv"
    args = ["proxies", "--space", "nb201", "--dataset", "cifar10", "--data-root", cifar10_root, "--archs", "3",
            "--batch-size", "8", "--proxies", "synflow,naswot", "params", "--csv", csv]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    df = pd.read_csv(csv)
    assert list(df.columns) == ["arch", "truth", "synflow", "naswot", "params", "seconds"] and len(df) == 3
    assert "on 8 cifar10 training images" in err and "truth: nb201/cifar10" in err
    for proxy in ("synflow", "naswot", "params"):
        assert proxy in out
    assert "3 architectures, batch 8, seed 0" in out
    # --resume keeps the finished rows: nothing is scored again
    code, out, err = run_cli(capsys, *args, "--resume")
    assert code == 0, err
    again = pd.read_csv(csv)
    assert again["seconds"].tolist() == df["seconds"].tolist() and "3 already in" in err


def test_the_launcher_builds_a_real_cifar10_run_from_its_data_root_field(cifar10_root):
    from nasbench_lab.widgets.launch import Launcher

    form = Launcher(space="pooling", method="uniform", dataset="cifar10", steps=2, start=False,
                    data_root=str(cifar10_root), store=False, device="cpu", batch_size=16)
    dash = form.create()
    assert dash is not None, form.message.value
    job = dash.run.job
    assert job.data.name == "cifar10" and len(job.data.train_y) == 25000
    form.data_root.value = str(cifar10_root / "nowhere")
    assert form.create() is None and "cifar-10-batches-py" in form.message.value
