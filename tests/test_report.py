"""``nasbench-lab report RUN_ID --html OUT`` (issue 16): one offline page of a real stored run, and
``save_figure`` for slides."""

from __future__ import annotations

import re

import plotly.graph_objects as go
import pytest

from nasbench_lab.cli import main
from nasbench_lab.runs import RunStore
from nasbench_lab.viz.export import save_figure


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    """A tiny real run: 4 Boltzmann steps on digits, ranked at step 2 and at the end."""
    tmp = tmp_path_factory.mktemp("report")
    store = tmp / "runs.sqlite"
    assert main(["run", "--method", "boltzmann", "--steps", "4", "--batch-size", "8", "--rank-images", "16",
                 "--rank-every", "2", "--top", "0", "--store", str(store)]) == 0
    rid = RunStore(store).runs()["id"].iloc[0]
    return store, rid, tmp


def test_report_is_one_offline_page_with_the_runs_figures_and_numbers(stored_run, capsys):
    store, rid, tmp = stored_run
    out = tmp / "handout.html"
    assert main(["report", rid, "--html", str(out), "--store", str(store)]) == 0
    text = out.read_text()
    # offline: no script fetched from a network, plotly.js inlined exactly once
    assert not re.search(r"<script[^>]+src=[\"']?https?:", text)
    assert text.count("<script type='text/javascript'>") == 1 and "Plotly" in text
    rec = RunStore(store).run(rid)
    tau = rec["summary"]["kendall_tau"]
    assert f"{tau:.4g}" in text and rid in text and "boltzmann" in text
    heads = re.findall(r"<h2>([^<]*)</h2>", text)
    assert heads[:2] == ["Training curves", "Ranking quality during training"] and heads[2].startswith("Method view")
    # one plotly figure per heading, with the run's own numbers: the loss curve has its 4 steps
    assert text.count("Plotly.newPlot") == len(heads) == 3
    losses = RunStore(store).metrics(rid)["loss"]
    assert f"{losses.iloc[-1]:.6f}"[:6] in text


def test_report_names_a_missing_run(stored_run, capsys):
    store, _, tmp = stored_run
    assert main(["report", "nope-1", "--html", str(tmp / "x.html"), "--store", str(store)]) == 2
    assert "no run 'nope-1'" in capsys.readouterr().err


def test_save_figure_html_always_and_a_clear_error_otherwise(tmp_path):
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="tau"))
    p = save_figure(fig, tmp_path / "f.html")
    assert "Plotly.newPlot" in p.read_text() and "<script src=\"http" not in p.read_text()
    with pytest.raises(ValueError, match="path: expected a file ending in .html"):
        save_figure(fig, tmp_path / "f.txt")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="kaleido"):
            save_figure(fig, tmp_path / "f.png")
