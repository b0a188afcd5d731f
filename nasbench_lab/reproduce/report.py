"""A reproduced table beside the thesis': per-seed rows, mean ± sd over seeds, the thesis' cell.

Files written into the table's folder (``NAME`` is the table's name):

- ``NAME.csv``: one row per (method, seed): every metric, the picks, the run id and timing;
- ``NAME.summary.csv``: one row per (method, metric): ours (mean, sd, n), the thesis' value and
  the difference, plus the protocol;
- ``NAME.md``: the same as a readable table, with the protocol and the thesis' claim;
- ``NAME.figure.json``: the figure (the primary metric per method, seeds as points, the thesis'
  value), plotly JSON (``plotly.io.read_json``), and ``NAME.html``, the same as an offline page;
- ``NAME.csv.provenance.json``: command, commit, versions, machine, wall time (written by the CLI).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nasbench_lab.reproduce.tables import METRIC_LABELS, SHARED_BN_KEYS, Table, thesis_value

#: per-seed columns, in order (the metrics first)
_INFO = ["label", "method", "seed", "steps", "top1_arch", "top1_true_rank", "bse_arch", "bse_true_rank",
         "n_ranked", "run_id", "train_s", "rank_s", "bse_s", "resumed_from"]


def per_seed(table: Table, results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    extra = ("spearman", *SHARED_BN_KEYS)
    rows = [{k: r.get(k) for k in (*_INFO, *table.metrics, *extra)} for r in results]
    df = pd.DataFrame(rows, columns=[*_INFO[:3], *table.metrics, *extra, *_INFO[3:]])
    order = {m.label: i for i, m in enumerate(table.methods)}
    return df.sort_values(["label", "seed"], key=lambda c: c.map(order) if c.name == "label" else c,
                          kind="stable").reset_index(drop=True)


def summary(table: Table, df: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, metric): ours (mean, sd over seeds, n) beside the thesis' value."""
    rows = []
    for m in table.methods:
        sub = df[df["label"] == m.label]
        for metric in table.metrics:
            vals = pd.to_numeric(sub[metric], errors="coerce").dropna() if metric in sub else pd.Series(dtype=float)
            t_mean, t_sd = thesis_value(table, m.label, metric)
            mean = float(vals.mean()) if len(vals) else np.nan
            rows.append({"label": m.label, "metric": metric, "ours_mean": mean,
                         "ours_sd": float(vals.std(ddof=1)) if len(vals) > 1 else np.nan, "n": int(len(vals)),
                         "thesis": t_mean, "thesis_sd": t_sd,
                         "difference": (mean - t_mean) if (t_mean is not None and len(vals)) else np.nan})
    return pd.DataFrame(rows)


def _cell(mean: float, sd: float, n: int, metric: str) -> str:
    if n == 0 or not np.isfinite(mean):
        return "–"
    fmt = "{:.3f}" if metric.startswith("kendall") else "{:.2f}"
    return fmt.format(mean) + (f" ± {fmt.format(sd)}" if np.isfinite(sd) else "") + f" (n={n})"


def markdown(table: Table, summ: pd.DataFrame, protocol_text: str, scale: str, note: str = "") -> str:
    """The table as the thesis prints it, ours beside theirs in every cell."""
    metrics = list(table.metrics)
    head = "| method | " + " | ".join(f"{METRIC_LABELS.get(m, m)}: ours | thesis" for m in metrics) + " |"
    sep = "|---|" + "---|---|" * len(metrics)
    lines = [f"# {table.thesis}: {table.title}", "",
             f"Scale `{scale}`: {protocol_text}.", "", head, sep]
    for m in table.methods:
        cells = []
        for metric in metrics:
            r = summ[(summ["label"] == m.label) & (summ["metric"] == metric)].iloc[0]
            ours = _cell(r["ours_mean"], r["ours_sd"], int(r["n"]), metric)
            th = "–" if r["thesis"] is None or (isinstance(r["thesis"], float) and np.isnan(r["thesis"])) else (
                f"{r['thesis']:g}" + (f" ± {r['thesis_sd']:g}" if r["thesis_sd"] is not None
                                     and np.isfinite(r["thesis_sd"]) else ""))
            cells += [ours, th]
        lines.append(f"| {m.label} | " + " | ".join(cells) + " |")
    lines += ["", f"The thesis' claim: {table.claim}.", ""]
    if note:
        lines += [note, ""]
    return "\n".join(lines)


def shared_bn_line(table: Table, df: pd.DataFrame) -> str:
    """The diagnostic beside the table: Kendall τ of the same supernets ranked with their shared BN
    statistics (no per-path recalibration; the thesis does not say which it used)."""
    if "kendall_tau_shared_bn" not in df:
        return ""
    parts = []
    for m in table.methods:
        v = pd.to_numeric(df.loc[df["label"] == m.label, "kendall_tau_shared_bn"], errors="coerce").dropna()
        if len(v):
            parts.append(f"{m.label} {v.mean():.3f}" + (f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else "") + f" (n={len(v)})")
    if not parts:
        return ""
    return ("Diagnostic, Kendall τ (all ranked) with the supernet's shared BN statistics instead of per-path "
            "recalibration: " + "; ".join(parts) + ".")


def write(table: Table, out: Path, results: Sequence[dict[str, Any]], protocol_text: str, scale: str,
          note: str = "") -> dict[str, Path]:
    """Write the table's files (see the module docstring) and return their paths."""
    from nasbench_lab.viz.export import save_figure
    from nasbench_lab.viz.reproduce import reproduction_figure

    out.mkdir(parents=True, exist_ok=True)
    df = per_seed(table, results)
    summ = summary(table, df)
    paths = {"csv": out / f"{table.name}.csv", "summary": out / f"{table.name}.summary.csv",
             "markdown": out / f"{table.name}.md", "figure": out / f"{table.name}.figure.json",
             "html": out / f"{table.name}.html"}
    df.to_csv(paths["csv"], index=False)
    summ.assign(scale=scale, protocol=protocol_text).to_csv(paths["summary"], index=False)
    diag = shared_bn_line(table, df)
    paths["markdown"].write_text(markdown(table, summ, protocol_text, scale, "\n\n".join(x for x in (note, diag) if x)))
    fig = reproduction_figure(df, summ, metric=table.primary, title=f"{table.thesis}: {METRIC_LABELS[table.primary]}")
    paths["figure"].write_text(fig.to_json())
    save_figure(fig, paths["html"])
    return paths


def load(folder: str | Path, table: Table) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A shipped table (per-seed rows, summary) from its folder, or None when it has not been run."""
    folder = Path(folder)
    f = folder / f"{table.name}.csv"
    if not f.is_file():
        return None
    df = pd.read_csv(f)
    return df, summary(table, df)


def verdict(table: Table, df: pd.DataFrame, metric: str | None = None) -> list[str]:
    """What the table supports, computed from it: each method against the first (the baseline),
    paired by seed, the thesis' difference beside ours; a difference counts only when its 95 %
    t-interval over the paired seeds excludes 0."""
    from scipy import stats

    metric = metric or table.primary
    base = table.methods[0].label
    lines = []
    b = df[df["label"] == base].set_index("seed")[metric]
    for m in table.methods[1:]:
        o = df[df["label"] == m.label].set_index("seed")[metric]
        seeds = sorted(set(b.dropna().index) & set(o.dropna().index))
        t_b, _ = thesis_value(table, base, metric)
        t_o, _ = thesis_value(table, m.label, metric)
        thesis = f"thesis {t_o - t_b:+.3f}" if (t_b is not None and t_o is not None) else "thesis: no number"
        if len(seeds) < 2:
            lines.append(f"{m.label} − {base} ({metric}): {len(seeds)} paired seed(s), too few to judge ({thesis})")
            continue
        d = (o.loc[seeds] - b.loc[seeds]).to_numpy(float)
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        if abs(d.mean()) <= half:
            word = "not distinguishable from 0"
        elif t_b is not None and t_o is not None and np.sign(d.mean()) == np.sign(t_o - t_b):
            word = "the thesis' direction, reproduced"
        elif t_b is not None and t_o is not None:
            word = "the opposite of the thesis"
        else:
            word = "a difference"
        lines.append(f"{m.label} − {base} ({metric}): {d.mean():+.3f} ± {half:.3f} (95 % interval, n={len(d)} "
                     f"paired seeds): {word} ({thesis})")
    return lines
