"""``launch(...)``: one call from a method name to a live dashboard; ``Launcher``: the same as a form."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as W

from nasbench_lab import data, spaces
from nasbench_lab import methods as method_registry
from nasbench_lab import validation as V
from nasbench_lab.runs import Run, RunStore

from ._common import inline_error, row
from ._static import StaticCopy
from .dashboard import RunDashboard


def _check_steps(steps: Any) -> int:
    try:
        n = int(str(steps).strip().replace("_", "").replace(",", ""))
    except (TypeError, ValueError):
        n = None
    if n is None or n < 1 or (isinstance(steps, float) and steps != n):
        raise ValueError(f"steps: expected a positive whole number of training steps (the budget), got {steps!r} "
                         "(e.g. steps=300)")
    return n


def launch(space: str = "pooling", method: str = "uniform", dataset: str | None = None, steps: int = 300,
           start: bool = False, store: RunStore | bool | None = None, benchmark: Any = "auto",
           name: str | None = None, **kwargs: Any) -> RunDashboard:
    """Build the job for ``method`` (:func:`nasbench_lab.methods.build_job`), wrap it in a Run
    recorded in the default RunStore, and return its dashboard (started when ``start=True``).

    Other keyword arguments go to the job (``seed``, ``batch_size``, ``lr``, ``method_options``,
    ``device``...). ``benchmark`` is passed to :class:`RunDashboard` (``"auto"``, a dataset name
    such as ``"cifar10"``, a Benchmark or None).
    """
    steps = _check_steps(steps)
    if dataset is None:  # the space knows its task and default dataset (scenes for autodeeplab)
        dataset = spaces.get(space).default_dataset
    job = method_registry.build_job(method, space=space, dataset=dataset, steps=steps, **kwargs)
    run = Run(job, store=store, name=name)
    dash = RunDashboard(run, benchmark=benchmark)
    if start:
        dash.start()
    return dash


class Launcher(StaticCopy):
    """A form: space, method, dataset, budget (steps) and method options; "Create run" shows a
    dashboard below.

    ``methods``: the methods offered (default: all, see :func:`nasbench_lab.methods.names`);
    ``options``: per-method default options, e.g. ``{"mixture": {"models": 4}}``, shown as JSON in
    the options field when that method is picked (the names each method takes are listed under
    the form). ``data_root`` fills the "data root" field: the folder holding the CIFAR python
    batches, read when the dataset is cifar10 or cifar100. Other keyword arguments go to
    :func:`launch` (``batch_size``, ``rank_every``, ``benchmark``...). Typed input is checked here
    and errors show inline in red instead of raising into the cell.
    """

    def __init__(self, space: str = "pooling", method: str = "uniform", dataset: str | None = None,
                 steps: int | str = 300, start: bool = True, methods: Sequence[str] | None = None,
                 options: Mapping[str, Mapping[str, Any]] | None = None, data_root: str | None = None,
                 **job_kwargs: Any) -> None:
        offered = list(methods) if methods is not None else method_registry.names()
        unknown = [m for m in offered if m not in method_registry.names()]
        if unknown or not offered:
            raise ValueError(f"methods: unknown {', '.join(map(repr, unknown)) or '(empty list)'}; valid: "
                             f"{', '.join(method_registry.names())} (e.g. methods=['uniform', 'mcts'])")
        if method not in offered:
            raise ValueError(f"method: {method!r} is not among methods={offered} (e.g. method={offered[0]!r})")
        self.defaults = {m: dict(o) for m, o in (options or {}).items()}
        self.job_kwargs = job_kwargs
        self.dashboard: RunDashboard | None = None
        style = {"description_width": "70px"}
        self.space = W.Dropdown(options=spaces.names(), value=space, description="space", style=style,
                                layout=W.Layout(width="230px"))
        self.method = W.Dropdown(options=offered, value=method, description="method", style=style,
                                 layout=W.Layout(width="230px"))
        self.dataset = W.Dropdown(options=data.names(), value=dataset or spaces.get(space).default_dataset,
                                  description="dataset", style=style, layout=W.Layout(width="200px"))
        # picking a space picks its default dataset (a segmentation space trains on the scenes)
        self.space.observe(lambda c: setattr(self.dataset, "value", spaces.get(c["new"]).default_dataset),
                           names="value")
        self.steps = W.Text(value=str(steps), description="steps", style=style, layout=W.Layout(width="160px"),
                            tooltip="training budget in steps")
        self.data_root = W.Text(value=str(data_root or ""), description="data root", style=style,
                                layout=W.Layout(width="330px"), placeholder="folder with cifar-10-batches-py/",
                                tooltip="where the CIFAR python batches are (cifar10 / cifar100)")
        self.start = W.Checkbox(value=start, description="start", indent=False, layout=W.Layout(width="70px"))
        self.button = W.Button(description="Create run", button_style="primary", layout=W.Layout(width="110px"))
        self.button.on_click(lambda _b: self.create())
        self.options = W.Text(description="options", style=style, layout=W.Layout(width="480px"),
                              placeholder='JSON, e.g. {"temperature": 0.1}')
        self.hint = W.HTML("")
        self.method.observe(lambda _c: self._show_method_options(), names="value")
        self._show_method_options()
        self.message = W.HTML("")
        self.output = W.VBox([])
        self.widget = W.VBox([row([self.space, self.method, self.dataset, self.steps, self.start, self.button],
                                  "nbl-tight", flex_flow="row wrap"),
                              row([self.options, self.hint], "nbl-tight", flex_flow="row wrap"),
                              row([self.data_root], "nbl-tight", flex_flow="row wrap"),
                              self.message, self.output])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _show_method_options(self) -> None:
        m = self.method.value
        self.options.value = json.dumps(self.defaults.get(m, {}))
        names = method_registry.option_names(m)
        self.hint.value = (f"<span style='font-size:12px;color:#666' title='{html.escape(', '.join(names))}'>"
                           f"{html.escape(m)} takes: {html.escape(', '.join(names[:8]))}"
                           f"{' …' if len(names) > 8 else ''}</span>" if names else
                           f"<span style='font-size:12px;color:#666'>{html.escape(m)} takes no options</span>")

    def _parse_options(self) -> dict[str, Any]:
        # a JSON object, each key once (a repeated key is an error, not "the last one wins")
        return V.json_object("options", self.options.value.strip() or "{}", '{"temperature": 0.1}')

    def create(self) -> RunDashboard | None:
        """Validate the form and create the run; errors show inline (returns None)."""
        self.message.value = ""
        try:
            steps = _check_steps(self.steps.value)
            opts = self._parse_options()
            kwargs = dict(self.job_kwargs)
            if self.data_root.value.strip():
                kwargs["data_root"] = self.data_root.value.strip()
            if opts:
                kwargs["method_options"] = {**kwargs.get("method_options", {}), **opts}
            dash = launch(self.space.value, self.method.value, self.dataset.value, steps,
                          start=self.start.value, **kwargs)
        except Exception as exc:  # bad input, or a resource (a full disk, a read-only workspace): said inline
            self.message.value = inline_error(exc)
            return None
        if self.dashboard is not None:
            self.dashboard.close()  # the old run goes on; only its view is replaced
        self.dashboard = dash
        self.output.children = [dash.widget]
        return dash
