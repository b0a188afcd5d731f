"""Every notebook in notebooks/ runs top to bottom in a real kernel (CI parameters), and is committed clean."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


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


def _reads_without_a_kernel(nb: nbformat.NotebookNode, name: str) -> None:
    """Issue 29: what an executed notebook shows where no widget can be drawn (an untrusted
    notebook in JupyterLab renders only "safe" mime types)."""
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    for o in outputs:
        data = o.get("data", {})
        plain = data.get("text/plain", "")
        # no widget falls back to its repr: "VBox(children=(HTML(..." or a tqdm bar frozen at 0 %
        assert not plain.startswith(("VBox(", "HBox(", "Box(")), f"{name}: {plain[:80]}"
    # progress bars are text in a kernel (nasbench_lab.progress): no tqdm widget in the saved state
    models = [s["_model"] for s in _widget_states(nb)]
    assert "FloatProgressModel" not in models, f"{name}: a tqdm widget bar was saved"
    # a live view's figures are saved beside it as plotly figures (widgets/_static.py)
    views = [o for o in outputs if o.get("data", {}).get("application/vnd.jupyter.widget-view+json", {}).get(
        "model_id") == "" and "application/vnd.plotly.v1+json" in o.get("data", {})]
    if name == "00_start_here.ipynb":
        assert len(views) >= 2 + 4 + 3  # explorer (DAG, histogram), dashboard (>= 4 drawn), run browser (3)
        main = [o["data"] for o in outputs if "RunDashboard" in o.get("data", {}).get("text/plain", "")]
        assert len(main) == 1 and "finished, 40 / 40 steps" in main[0]["text/plain"]
        assert "finished" in main[0]["text/html"] and "running" not in main[0]["text/html"]
    if name in ("00_start_here.ipynb", "04_darts_and_collapse.ipynb"):
        # the saved widget state is the end of the run: the header's badge and the summary table agree
        html = [s.get("value", "") for s in _widget_states(nb) if s["_model"] == "HTMLModel"]
        summary = [h for h in html if "<td style='color:#666;padding:1px 12px 1px 0'>status</td>" in h]
        assert summary and all("finished" in h and "running" not in h for h in summary), summary
        bars = [s for s in _widget_states(nb) if s["_model"] == "IntProgressModel"]
        assert bars and all(b["value"] == b["max"] for b in bars)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, executed_notebook):
    nb = executed_notebook(path.name)  # executed once per session at the CI budget (tests/conftest.py)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, "\n".join("\n".join(o.traceback) for o in errors)
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.output_type == "stream")
    mimes = [m for c in nb.cells if c.cell_type == "code" for o in c.outputs for m in o.get("data", {})]
    _reads_without_a_kernel(nb, path.name)
    if path.name == "00_start_here.ipynb":
        steps = 40  # STEPS under NASBENCH_LAB_CI
        assert f"finished: {steps} steps" in text
        assert mimes.count("application/vnd.jupyter.widget-view+json") >= 3  # explorer, dashboard, browser
        assert "application/vnd.plotly.v1+json" in mimes  # the final ranking scatter
        # the final ranking scatter, with Kendall tau against the CIFAR-10 table in its title
        plotly = [json.dumps(o["data"]["application/vnd.plotly.v1+json"]) for c in nb.cells if c.cell_type == "code"
                  for o in c.outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
        assert any("Kendall \\u03c4 = " in p or "Kendall τ = " in p for p in plotly)
        # the cell under the dashboard prints the same τ as the dashboard's summary and the plot title
        m = re.search(r"Kendall τ \(all ranked\) ([+-]\d\.\d{3}), Kendall τ \(true top-10\) ([+-]\d\.\d{3}|[+-]?nan); "
                      r"the dashboard's summary: ([+-]\d\.\d{3}), ([+-]\d\.\d{3}|[+-]?nan)", text)
        assert m, text
        assert m.group(1) == m.group(3) and m.group(2) == m.group(4), m.group(0)
        assert any(f"Kendall \\u03c4 = {float(m.group(1)):.3f}" in p or f"Kendall τ = {float(m.group(1)):.3f}" in p
                   for p in plotly)
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
    elif path.name == "07_interference.ipynb":
        # the live run measured twice (STEPS=8, EVERY=4 under NASBENCH_LAB_CI), its dashboard drawn; the
        # GM-NAS matrix, the shipped CIFAR-10 curves and the three samplers' comparison plotted
        assert "finished: 8 steps, 2 measurements of 4 children" in text
        assert "application/vnd.jupyter.widget-view+json" in mimes
        assert mimes.count("application/vnd.plotly.v1+json") >= 4
        assert "mixture M = 4:" in text
