"""A live view leaves what a reader without a kernel needs (widgets/_static.py, issue 29).

Driven by a real (tiny) training run: the outputs a view displays, the static figures it fills
in when the run ends, the widget state it sends again, and the text progress bar of kernels.
"""

from __future__ import annotations

import asyncio
import base64

import ipywidgets as W
import numpy as np
import pytest

from nasbench_lab import progress as progress_mod
from nasbench_lab.runs import Run, RunStore
from nasbench_lab.widgets import RunDashboard
from nasbench_lab.widgets._static import HIDDEN_VIEW, PLOTLY_MIME, WIDGET_MIME

STEPS = 8


def _array(v):
    """A plotly JSON array: a list, or numpy's bytes as plotly.py sends them ({"dtype", "bdata"})."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v, float)


@pytest.fixture
def shown(monkeypatch):
    """Record what ``display`` and ``update_display`` are given: {display_id: [bundles]}."""
    import IPython.display as D

    seen: dict[str, list[dict]] = {}
    order: list[str] = []

    def display(bundle, raw=False, display_id=None):
        assert raw and display_id
        order.append(display_id)
        seen[display_id] = [bundle]

    def update_display(bundle, raw=False, display_id=None):
        assert raw and display_id in seen
        seen[display_id].append(bundle)

    monkeypatch.setattr(D, "display", display)
    monkeypatch.setattr(D, "update_display", update_display)
    return seen, order


def test_dashboard_leaves_static_figures_and_resends_its_state(tmp_path, shown, monkeypatch):
    from nasbench_lab.training import Trainer

    seen, order = shown
    job = Trainer(space="pooling", dataset="digits", steps=STEPS, batch_size=16, val_batch_size=32, rank_images=16,
                  device="cpu")
    run = Run(job, store=RunStore(tmp_path / "runs.sqlite"), snapshot_every=4)
    dash = RunDashboard(run, auto_refresh=False)
    dash._ipython_display_()  # what IPython calls for a cell's last expression
    main, *slots = (seen[i][0] for i in order)
    assert main[WIDGET_MIME]["model_id"] == dash.widget.model_id  # the live view itself
    assert main["text/plain"] == f"<RunDashboard pooling · uniform · digits: created, 0 / {STEPS} steps>"
    assert "VBox" not in main["text/plain"] and "created" in main["text/html"]
    assert len(slots) == len(dash.figures)
    # nothing drawn yet: every slot is hidden where widgets render, and empty elsewhere
    assert all(s[WIDGET_MIME] == HIDDEN_VIEW and PLOTLY_MIME not in s for s in slots)

    sent: list[W.Widget] = []
    original = W.Widget.send_state
    monkeypatch.setattr(W.Widget, "send_state", lambda self, key=None: (sent.append(self), original(self, key))[1])
    run.start()
    assert asyncio.run(dash.wait(120)) == "finished"
    main, *slots = (seen[i][-1] for i in order)
    assert f"finished, {STEPS} / {STEPS} steps" in main["text/plain"] and "finished" in main["text/html"]
    figs = {s[PLOTLY_MIME]["layout"]["title"]["text"].split("<br>")[0]: s[PLOTLY_MIME] for s in slots if PLOTLY_MIME in s}
    # the curves as the run logged them, step by step
    losses = [e.data["loss"] for e in run.events.since(0, kinds="step")]
    raw = next(t for t in figs["Training curves"]["data"] if t["meta"] == {"role": "raw", "metric": "loss"})
    np.testing.assert_allclose(_array(raw["y"]), losses)
    assert any(t.startswith("Supernet ranking vs ground truth") for t in figs)  # the final ranking
    assert any(t.startswith("Current architecture") for t in figs)
    # every widget of the card sent its state again (nbclient saves it from the awaiting cell)
    assert {id(dash.summary), id(dash.status), id(dash.progress), id(dash.curves)} <= {id(w) for w in sent}
    assert dash.progress.value == STEPS and "finished" in dash.summary.value


def test_progress_is_plain_text_on_stdout_in_a_kernel(monkeypatch, capsys):
    monkeypatch.setattr(progress_mod, "in_kernel", lambda: True)
    for _ in progress_mod.progress(range(3), desc="scoring", mininterval=0):
        pass
    out = capsys.readouterr()
    last = out.out.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("scoring: 100%") and "3/3" in last and not out.err
    monkeypatch.setattr(progress_mod, "in_kernel", lambda: False)
    for _ in progress_mod.progress(range(2), desc="cli"):
        pass
    out = capsys.readouterr()
    assert "cli: 100%" in out.err and not out.out  # a terminal keeps tqdm's usual bar on stderr
