"""ArchitectureExplorer: pick an architecture of a space and see what it is and where it stands."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from nasbench_lab import benchmarks, spaces
from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.viz.dag import dag_figure
from nasbench_lab.viz.sampling import accuracy_distribution
from nasbench_lab.viz.style import empty_figure

from ._common import (
    box,
    card,
    copy_figure,
    figure_widget,
    inline_error,
    row,
    section_title,
    table_html,
)
from ._static import StaticCopy
from .export import ExportButton

#: neighbours listed at most (NB-201 has 24, NB-Macro 16, pooling up to 4)
MAX_NEIGHBOURS = 30


def _slug(arch: Arch) -> str:
    """A folder name for an architecture: its genes as digits (letters past 9)."""
    return "".join("0123456789abcdefghijklmnopqrstuvwxyz"[g % 36] for g in arch.genes)[:100]


def _fmt_count(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return str(n)


class ArchitectureExplorer(StaticCopy):
    """One dropdown per decision (or paste a canonical string): params, FLOPs, ground truth,
    neighbours (click to move there), the DAG and the accuracy distribution.

    ``dataset`` picks the ground-truth table where a space has several (NB-201); a dropdown
    offers the others. ``select(arch)`` moves programmatically; ``arch`` is the current one.
    """

    def __init__(self, space: SearchSpace | str = "pooling", arch: Arch | str | None = None,
                 dataset: str | None = None) -> None:
        if isinstance(space, str):
            space = spaces.get(space)  # raises a ValueError listing the valid names
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space: expected a SearchSpace or a name such as 'nb201', got {type(space).__name__}")
        self.space = space
        self.datasets = benchmarks.datasets(space)
        if dataset is not None and dataset not in self.datasets:
            raise ValueError(f"dataset: {space.name} has ground truth for {self.datasets or 'no dataset'}, "
                             f"got {dataset!r}")
        self.dataset = dataset or (self.datasets[0] if self.datasets else None)
        self.benchmark = benchmarks.get(space, self.dataset) if self.dataset else None
        self.arch: Arch = space.parse(arch) if arch is not None else space.default()
        self._syncing = False
        self._costs: dict[tuple[Arch, str], int] = {}
        self._build()
        self._show()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        sp = self.space
        self.level_dropdowns: list[W.Dropdown] = []
        for level in range(sp.num_levels):
            dd = W.Dropdown(description=sp.level_name(level), style={"description_width": "110px"},
                            layout=W.Layout(width="300px"))
            dd.observe(lambda change, level=level: self._on_level(level, change), names="value")
            self.level_dropdowns.append(dd)
        self._set_dropdowns(self.arch.genes)
        self.text = W.Text(value=str(self.arch), description="architecture", continuous_update=False,
                           placeholder=sp.example, style={"description_width": "90px"},
                           layout=W.Layout(width="100%"))
        self.text.observe(self._on_text, names="value")
        self.message = W.HTML("")
        self.dataset_dropdown = W.Dropdown(options=self.datasets, value=self.dataset, description="ground truth",
                                           style={"description_width": "90px"}, layout=W.Layout(width="300px"),
                                           disabled=len(self.datasets) < 2)
        self.dataset_dropdown.observe(self._on_dataset, names="value")
        self.info = W.HTML("")
        self.neighbours = W.VBox([], layout=W.Layout(max_height="300px", overflow_y="auto", width="100%"))
        self.dag = figure_widget(dag_figure(sp, self.arch, height=280))
        self.distribution = figure_widget(
            accuracy_distribution(self.benchmark, self.arch, height=280) if self.benchmark is not None
            else empty_figure(f"no ground truth for {sp.name}", "Accuracy distribution", 280))
        head = W.HTML(f"<div style='font-size:16px;font-weight:600;color:#222'>Architecture explorer · "
                      f"{html.escape(sp.name)}<span style='font-weight:400;color:#777;font-size:12px;margin-left:10px'>"
                      f"{sp.size:,} architectures · {html.escape(sp.description)}</span></div>")
        dropdown_box = row(self.level_dropdowns, "nbl-tight", flex_flow="row wrap")
        # this architecture as a standalone network (fresh weights: retrain with `nasbench-lab export --retrain`)
        self.export = ExportButton(lambda: (sp, {"arch": self.arch}, f"{sp.name}-{_slug(self.arch)}"),
                                   tooltip="write this architecture (untrained weights) as arch.json, "
                                           "model.safetensors and model.py into the workspace")
        left = W.VBox([section_title("Decisions"), dropdown_box, self.text, self.message,
                       self.dataset_dropdown, section_title("This architecture"), self.info,
                       self.export.widget],
                      layout=W.Layout(width="45%", padding="0 12px 0 0"))
        right = W.VBox([section_title("Neighbours (one decision away) · click to move"), self.neighbours],
                       layout=W.Layout(width="55%"))
        self.widget = card([head, W.HBox([left, right], layout=W.Layout(width="100%")),
                            W.HBox([box(self.dag, "50%"), box(self.distribution, "50%")],
                                   layout=W.Layout(width="100%"))])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def static_figures(self) -> list:
        return [self.dag, self.distribution]

    def static_html(self) -> str:
        return f"<div><b>Architecture explorer · {html.escape(self.space.name)}</b>: {html.escape(str(self.arch))}{self.info.value}</div>"

    def static_text(self) -> str:
        return f"<ArchitectureExplorer {self.space.name}: {self.arch}>"

    # ------------------------------------------------------------------ input
    def _set_dropdowns(self, genes: tuple[int, ...]) -> None:
        """Options of every level given the earlier genes, values = ``genes``."""
        self._syncing = True
        try:
            for level, dd in enumerate(self.level_dropdowns):
                opts = list(self.space.level_options(genes[:level]))
                dd.options = [(self.space.option_label(level, g), g) for g in opts]
                dd.value = genes[level]
        finally:
            self._syncing = False

    def _on_level(self, level: int, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] is None:
            return
        genes = list(self.arch.genes)
        genes[level] = int(change["new"])
        # A constrained space (pooling) may make later choices invalid: keep each later gene if
        # it is still allowed, else take the valid option closest to it.
        for later in range(level + 1, self.space.num_levels):
            opts = list(self.space.level_options(genes[:later]))
            if genes[later] not in opts:
                genes[later] = min(opts, key=lambda g: (abs(g - genes[later]), g))
        self.select(genes)

    def _on_text(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        self.select(change["new"])

    def _on_dataset(self, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] is None:
            return
        self.dataset = change["new"]
        self.benchmark = benchmarks.get(self.space, self.dataset)
        self._show()

    def select(self, arch: Arch | str | Any) -> bool:
        """Move to ``arch`` (string, Arch or genes); an invalid one shows inline, returns False."""
        try:
            parsed = self.space.parse(arch)
        except (ValueError, TypeError) as exc:
            self.message.value = inline_error(str(exc))
            return False
        self.message.value = ""
        self.arch = parsed
        self._show()
        return True

    # ------------------------------------------------------------------ output
    def _show(self) -> None:
        sp, arch, bm = self.space, self.arch, self.benchmark
        self._syncing = True
        try:
            self.text.value = str(arch)
        finally:
            self._syncing = False
        self._set_dropdowns(arch.genes)
        rows: list[tuple[str, Any]] = [("canonical string", f"<code>{html.escape(str(arch))}</code>"),
                                       ("parameters", _fmt_count(self._cost(arch, "params"))),
                                       ("FLOPs (MACs)", _fmt_count(self._cost(arch, "flops")))]
        if bm is not None:
            acc, rank = bm.query(arch), bm.rank(arch)
            best, best_acc = bm.optimum
            rows += [(f"accuracy ({bm.dataset})", f"<b>{acc:.2f}%</b>"),
                     ("rank", f"{rank:,} / {len(bm):,}"),
                     ("gap to best", f"{best_acc - acc:.2f} pts (best {html.escape(str(best))})")]
        canon = sp.canonical(arch)
        if canon != arch:
            rows.append(("same network as", f"<code>{html.escape(str(canon))}</code>"))
        self.info.value = table_html(rows)
        self._show_neighbours()
        copy_figure(self.dag, dag_figure(sp, arch, height=280))
        if bm is not None:
            copy_figure(self.distribution, accuracy_distribution(bm, arch, height=280))

    def _cost(self, arch: Arch, what: str) -> int:
        """Params or MACs, cached. MACs come from the benchmark's fitted model once it exists (a
        lookup); building it takes ~25 forward passes, so until then one forward of the space."""
        key = (arch, what)
        if key not in self._costs:
            if what == "flops" and self.benchmark is not None and "_flops" in vars(self.benchmark):
                self._costs[key] = int(self.benchmark.flops(arch))
            else:
                self._costs[key] = int(getattr(self.space, what)(arch))
        return self._costs[key]

    def neighbour_rows(self) -> list[dict[str, Any]]:
        """The neighbours of the current architecture with their accuracy (best first when known)."""
        rows = [{"arch": str(n), "accuracy": self.benchmark.query(n) if self.benchmark is not None else None}
                for n in self.space.neighbours(self.arch)]
        if self.benchmark is not None:
            rows.sort(key=lambda r: -r["accuracy"])
        return rows[:MAX_NEIGHBOURS]

    def _show_neighbours(self) -> None:
        here = self.benchmark.query(self.arch) if self.benchmark is not None else None
        items = []
        self.neighbour_buttons: list[W.Button] = []
        for nb in self.neighbour_rows():
            b = W.Button(description=nb["arch"], tooltip=f"select {nb['arch']}",
                         layout=W.Layout(width="auto", max_width="420px", height="26px"))
            b.on_click(lambda _b, a=nb["arch"]: self.select(a))
            self.neighbour_buttons.append(b)
            label = ""
            if nb["accuracy"] is not None:
                delta = nb["accuracy"] - here
                color = "#2e7d32" if delta > 0 else "#c62828" if delta < 0 else "#555"
                label = (f"<span style='font-size:12px'>{nb['accuracy']:.2f}% "
                         f"<span style='color:{color}'>({delta:+.2f})</span></span>")
            items.append(row([b, W.HTML(label)]))
        self.neighbours.children = items or [W.HTML("<i>no neighbours</i>")]

    def close(self) -> None:
        for w in (self.dag, self.distribution):
            w.close()
        self.widget.close()

    def __repr__(self) -> str:
        return f"<ArchitectureExplorer {self.space.name} {self.arch}>"
