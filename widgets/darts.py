"""Live controls of a differentiable run: architecture learning rate, GDAS temperature, alarms.

``DartsControls(run)`` (or ``DartsControls(dashboard)``) shows a log slider for the alpha
learning rate, for GDAS a temperature slider with an "anneal" switch (off = pinned), and the
collapse alarms raised so far. Changes call the job's ``set_arch_lr`` / ``set_temperature``, so
they apply from the next step: pause the run, change them, resume. The alpha trajectories
themselves are the dashboard's method panel (:func:`nasbench_lab.viz.alphas.alpha_panel`).
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from nasbench_lab.runs import Run

from ._common import inline_error, row
from ._static import StaticCopy

__all__ = ["DartsControls"]


class DartsControls(StaticCopy):
    """Sliders bound to a running :class:`~nasbench_lab.differentiable.DifferentiableTrainer`."""

    def __init__(self, run: Run | Any) -> None:
        run = getattr(run, "run", run)  # a RunDashboard is accepted too
        job = getattr(run, "job", None)
        if not isinstance(run, Run) or not hasattr(job, "set_arch_lr"):
            raise ValueError("DartsControls: expected a Run (or its dashboard) of a differentiable job, e.g. "
                             "launch(space='nb201', method='darts'); got " + type(run).__name__)
        self.run, self.job = run, job
        self._seq = 0
        style = {"description_width": "110px"}
        self.arch_lr = W.FloatLogSlider(value=job.arch_optimizer.param_groups[0]["lr"], base=10, min=-5, max=0,
                                        step=0.1, description="alpha lr", readout_format=".1e", style=style,
                                        continuous_update=False, layout=W.Layout(width="380px"))
        self.arch_lr.observe(self._on_lr, names="value")
        parts: list[W.Widget] = [self.arch_lr]
        self.temperature: W.FloatLogSlider | None = None
        self.anneal: W.Checkbox | None = None
        if job.method == "gdas":
            self.temperature = W.FloatLogSlider(value=job.temperature, base=10, min=-2, max=1.5, step=0.05,
                                                description="temperature", readout_format=".2f", style=style,
                                                continuous_update=False, disabled=True, layout=W.Layout(width="380px"))
            self.anneal = W.Checkbox(value=True, description="anneal 10 → 0.1", indent=False,
                                     layout=W.Layout(width="150px"))
            self.temperature.observe(self._on_temperature, names="value")
            self.anneal.observe(self._on_anneal, names="value")
            parts += [self.temperature, self.anneal]
        self.message = W.HTML("")
        self.alarms = W.HTML("")
        self.widget = W.VBox([row(parts, "nbl-tight", flex_flow="row wrap"), self.message, self.alarms])
        self.refresh()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self.refresh()
        return self.widget._repr_mimebundle_(**kwargs)

    def _on_lr(self, change: dict[str, Any]) -> None:
        try:
            self.job.set_arch_lr(float(change["new"]))
            self.message.value = f"<span style='color:#555'>alpha lr {change['new']:.1e} from step " \
                                 f"{self.job.step_count + 1}</span>"
        except ValueError as exc:
            self.message.value = inline_error(str(exc))

    def _on_temperature(self, change: dict[str, Any]) -> None:
        if self.anneal is not None and not self.anneal.value:
            self.job.set_temperature(float(change["new"]))
            self.message.value = f"<span style='color:#555'>temperature pinned to {change['new']:.2f}</span>"

    def _on_anneal(self, change: dict[str, Any]) -> None:
        assert self.temperature is not None
        self.temperature.disabled = bool(change["new"])
        self.job.set_temperature(None if change["new"] else float(self.temperature.value))

    def refresh(self) -> int:
        """Read new alarm events (and the live temperature); returns how many alarms arrived."""
        new = self.run.events.since(self._seq, kinds=["alarm"])
        if new:
            self._seq = new[-1].seq
            items = "".join(f"<li>step {e.step}: <b>{html.escape(str(e.data.get('rule')))}</b> — "
                            f"{html.escape(str(e.data.get('message')))}</li>" for e in new)
            self.alarms.value += f"<ul style='color:#c62828;margin:2px 0'>{items}</ul>"
        if self.temperature is not None and self.anneal is not None and self.anneal.value:
            self.temperature.value = self.job.temperature
        return len(new)
