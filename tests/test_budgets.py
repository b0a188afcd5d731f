"""Every notebook's parameters cell offers the three budgets of the course (issue 16): ``lecture``
is the default, ``ci`` is what the test suite gets, ``full`` is research scale, and all three set
the same names. The lecture budget's time is measured by ``scripts/time-notebooks`` (never
asserted here: wall-clock on a shared machine is not a test)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def _run_parameters(path: Path, ci: bool, monkeypatch) -> dict:
    cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    if ci:
        monkeypatch.setenv("NASBENCH_LAB_CI", "1")
    else:
        monkeypatch.delenv("NASBENCH_LAB_CI", raising=False)
    ns: dict = {}
    exec(compile(cell.source, f"{path.name}:parameters", "exec"), ns)  # noqa: S102 - our own committed notebook
    return ns


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lecture_is_the_default_and_ci_is_injected(path, monkeypatch):
    ns = _run_parameters(path, ci=False, monkeypatch=monkeypatch)
    assert ns["BUDGET"] == "lecture" and set(ns["BUDGETS"]) == {"ci", "lecture", "full"}, path.name
    keys = {b: set(v) for b, v in ns["BUDGETS"].items()}
    assert keys["ci"] == keys["lecture"] == keys["full"], f"{path.name}: budgets set different names {keys}"
    for k, v in ns["BUDGETS"]["lecture"].items():
        assert ns[k] == v and not ns["CI"]
    ci = _run_parameters(path, ci=True, monkeypatch=monkeypatch)
    assert ci["BUDGET"] == "ci" and ci["CI"] and all(ci[k] == v for k, v in ci["BUDGETS"]["ci"].items())
    assert os.environ.get("NASBENCH_LAB_CI") == "1"


def test_a_wrong_budget_is_named(monkeypatch):
    cell = next(c for c in nbformat.read(NOTEBOOKS[0], as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    monkeypatch.delenv("NASBENCH_LAB_CI", raising=False)
    src = cell.source.replace('BUDGET = "lecture"', 'BUDGET = "lectrue"', 1)
    with pytest.raises(ValueError, match="BUDGET: expected one of"):
        exec(compile(src, "parameters", "exec"), {})  # noqa: S102


def _time_notebooks():
    import importlib.machinery
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "time-notebooks"
    loader = importlib.machinery.SourceFileLoader("time_notebooks", str(path))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader("time_notebooks", loader))
    loader.exec_module(mod)
    return mod


def test_time_notebooks_scales_the_work_and_keeps_the_rest(monkeypatch):
    """``scripts/time-notebooks`` runs a fraction of the lecture budget: the work names and the
    intervals inside a run scale together (same number of rankings), nothing else changes."""
    path = next(p for p in NOTEBOOKS if p.name.startswith("03_"))
    ns = _run_parameters(path, ci=False, monkeypatch=monkeypatch)
    lecture = dict(ns["BUDGETS"]["lecture"])
    exec(compile(_time_notebooks().scaled_cell("lecture", 0.1), "scaled", "exec"), ns)  # noqa: S102
    assert ns["STEPS"] == round(lecture["STEPS"] * 0.1) and ns["RANK_EVERY"] == round(lecture["RANK_EVERY"] * 0.1)
    assert ns["STEPS"] // ns["RANK_EVERY"] == lecture["STEPS"] // lecture["RANK_EVERY"]
    for k in ("BATCH_SIZE", "RANK_IMAGES", "VAL_BATCH_SIZE", "SEEDS", "METHODS", "TREES"):
        assert ns[k] == lecture[k], k
