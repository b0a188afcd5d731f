"""Every notebook in notebooks/ runs top to bottom in a real kernel (CI parameters), and is committed clean."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from waits import seconds

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = int(seconds(300))  # per cell, stretched on a busy machine (tests/waits.py)


def _widget_states(nb: nbformat.NotebookNode) -> list[dict]:
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return [m.get("state", {}) | {"_model": m.get("model_name")} for m in state.values()]


def test_there_are_notebooks_and_they_are_committed_without_outputs():
    names = [p.name for p in NOTEBOOKS]
    assert {"00_start_here.ipynb", "01_search_spaces.ipynb"} <= set(names)
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3", path.name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "NASBENCH_LAB_CI" in tagged[0].source, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("NASBENCH_LAB_CI", "1")  # the parameters cell picks small budgets
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, "\n".join("\n".join(o.traceback) for o in errors)
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.output_type == "stream")
    mimes = [m for c in nb.cells if c.cell_type == "code" for o in c.outputs for m in o.get("data", {})]
    if path.name == "00_start_here.ipynb":
        steps = 40  # STEPS under NASBENCH_LAB_CI
        assert f"finished: {steps} steps" in text
        assert mimes.count("application/vnd.jupyter.widget-view+json") >= 3  # explorer, dashboard, browser
        assert "application/vnd.plotly.v1+json" in mimes  # the final ranking scatter
        # the final ranking scatter, with Kendall tau against the CIFAR-10 table in its title
        plotly = [json.dumps(o["data"]["application/vnd.plotly.v1+json"]) for c in nb.cells if c.cell_type == "code"
                  for o in c.outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
        assert any("Kendall \\u03c4 = " in p or "Kendall τ = " in p for p in plotly)
        # widget models the kernel opened: the dashboard's progress bar sized to the budget
        bars = [s for s in _widget_states(nb) if s["_model"] == "IntProgressModel"]
        assert [s.get("max") for s in bars] == [steps]
    elif path.name == "08_segmentation.ipynb":
        # the trellis counts, the live dashboard (trellis view, masks panel) and the equal-budget table
        assert "28,657 paths" in text and "75,025 paths" in text and "autodeeplab-l6: 89 paths" in text
        assert mimes.count("application/vnd.jupyter.widget-view+json") >= 1
        assert "Kendall tau" in text
    elif path.name == "01_search_spaces.ipynb":
        # one DAG per space and one histogram per benchmark, plus the landscape plots
        from nasbench_lab import benchmarks, spaces

        plots = mimes.count("application/vnd.plotly.v1+json")
        assert plots >= len(spaces.names()) + len(benchmarks.available()) + 3
