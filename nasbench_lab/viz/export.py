"""Figures for slides and handouts: one figure to a file, and a run's figures as one offline HTML page.

``save_figure(fig, "tau.html")`` always works (the page carries plotly.js inline, so it opens
without a network); ``.png``/``.svg``/``.pdf`` go through plotly's static export, which needs the
optional ``kaleido`` package (``pip install 'nasbench_lab[export]'``). In a notebook, the camera
icon of every plotly figure also downloads a PNG.

``run_report_html(store, run_id)`` builds the handout of ``nasbench-lab report RUN_ID --html OUT``
from the SQLite run store alone: the run's config and summary, its training curves, the Kendall τ
vs step of periodic rankings, and the method's own panel (the last snapshot).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

STATIC = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp")


def save_figure(fig: go.Figure, path: str | os.PathLike, scale: float = 2.0) -> Path:
    """Write ``fig`` to ``path``: ``.html`` (self-contained, offline) or a static image (needs kaleido)."""
    if not isinstance(fig, go.Figure):
        raise ValueError(f"fig: expected a plotly go.Figure (or FigureWidget), got {type(fig).__name__}")
    p = Path(path).expanduser()
    ext = p.suffix.lower()
    if ext not in (".html", *STATIC):
        raise ValueError(f"path: expected a file ending in .html, {', '.join(STATIC)}, got {str(path)!r} "
                         "(e.g. 'figure.html' or 'figure.png')")
    if not p.parent.is_dir():
        raise ValueError(f"path: the folder {str(p.parent)!r} does not exist; create it first")
    if ext == ".html":
        p.write_text(pio.to_html(fig, include_plotlyjs=True, full_html=True), encoding="utf-8")
        return p
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise ValueError(f"path: a {ext} image needs the optional kaleido package (pip install "
                         "'nasbench_lab[export]'); .html always works, or use the figure's camera icon") from None
    fig.write_image(str(p), scale=scale)
    return p


def page(title: str, sections: Sequence[tuple[str, go.Figure | str]], summary: dict[str, Any] | None = None) -> str:
    """One self-contained HTML page: plotly.js inlined once, then each (heading, figure or HTML) in turn."""
    from plotly.offline import get_plotlyjs

    parts = [f"<h1>{html.escape(title)}</h1>"]
    if summary:
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
                       for k, v in summary.items())
        parts.append(f"<table class='summary'>{rows}</table>")
    for i, (heading, body) in enumerate(sections):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(body if isinstance(body, str) else pio.to_html(body, include_plotlyjs=False, full_html=False,
                                                                    div_id=f"fig{i}"))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table.summary{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style><script type='text/javascript'>{get_plotlyjs()}</script></head>"
            f"<body>{''.join(parts)}</body></html>")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return v if isinstance(v, str) else json.dumps(v, default=str)


def run_sections(store: Any, run_id: str) -> tuple[dict[str, Any], list[tuple[str, go.Figure]]]:
    """The record of one stored run and its figures (heading, figure), from the run store alone."""
    from nasbench_lab import spaces
    from nasbench_lab.viz.curves import training_curves
    from nasbench_lab.viz.panels import PanelContext, panel_figure
    from nasbench_lab.viz.ranking import kendall_panel

    rec = store.run(run_id)
    cfg = rec.get("config") or {}
    metrics = store.metrics(run_id)
    figs: list[tuple[str, go.Figure]] = []
    if not metrics.empty:
        names = [m for m in ("loss", "reward", "train_loss", "val_loss", "val_acc") if m in metrics.columns] \
            or list(metrics.columns[:3])
        figs.append(("Training curves", training_curves(metrics.reset_index(), metrics=names)))
    snaps = store.snapshots(run_id)
    last = snaps[-1]["data"] if snaps else None
    if isinstance(last, dict) and last.get("rankings"):
        figs.append(("Ranking quality during training", kendall_panel(last)))
    if isinstance(last, dict) and last.get("panel") and cfg.get("space") in spaces.names():
        bench = None
        try:
            from nasbench_lab import benchmarks

            truth = cfg.get("benchmark") if isinstance(cfg.get("benchmark"), str) else cfg.get("dataset")
            bench = benchmarks.get(cfg["space"], dataset=truth)
        except (ValueError, KeyError, TypeError):
            bench = None
        try:
            fig = panel_figure(last, PanelContext(spaces.get(cfg["space"]), bench, str(cfg.get("method", ""))))
        except Exception as exc:  # noqa: BLE001 - a handout still renders the rest
            fig = None
            figs.append((f"Method view unavailable ({type(exc).__name__}: {exc})", go.Figure()))
        if fig is not None:
            figs.append((f"Method view at step {snaps[-1]['step']}", fig))
    return rec, figs


def run_report_html(store: Any, run_id: str) -> str:
    """The handout of one run: summary table and every figure, one offline HTML page."""
    rec, figs = run_sections(store, run_id)
    cfg = rec.get("config") or {}
    head = {"run": rec["id"], "name": rec.get("name"), "status": rec.get("status"),
            "steps": f"{rec.get('step')}/{rec.get('total_steps')}",
            **{k: cfg[k] for k in ("space", "method", "dataset", "seed", "batch_size", "method_options") if k in cfg},
            **(rec.get("summary") or {})}
    return page(f"nasbench_lab run {rec['id']}", figs, head)
