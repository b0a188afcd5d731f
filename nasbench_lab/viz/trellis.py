"""The trellis view of Auto-DeepLab's space (issue 26): the layer x resolution grid, every
allowed move drawn faint, the current path drawn bold, and, when given, how often each trellis
node was visited (marker size and colour).

``trellis_figure(space, arch, visits)``; ``trellis_visits(space, counts)`` turns sampled
architectures (``{arch string: times sampled}``: a sampler's history, an MCTS snapshot's
``counts``) into visits per node: a path visits one node per layer, so a node's visits are the
samples whose path goes through it, what an MCTS default tree counts at that depth.
Also ``mask_figure``: predicted masks beside the true ones for a few validation scenes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.viz.style import MUTED, base_layout

_PATH_COLOR = "#dd8452"
_LEVEL_NAMES = ("1/4", "1/8", "1/16", "1/32")


def is_trellis(space: Any) -> bool:
    """True for a space whose networks are paths through a layer x resolution trellis."""
    return hasattr(space, "reachable") and getattr(space, "task", "") == "segmentation"


def trellis_visits(space: SearchSpace, counts: Mapping[str | Arch, int | float]) -> dict[tuple[int, int], float]:
    """Visits of each trellis node ``(layer 1..L, level)`` from how often each path was sampled
    (strings that do not parse are skipped: a snapshot of another space)."""
    out: dict[tuple[int, int], float] = {}
    for arch, n in counts.items():
        try:
            genes = space.parse(arch).genes
        except ValueError:
            continue
        for layer, level in enumerate(genes, start=1):
            out[(layer, level)] = out.get((layer, level), 0.0) + float(n)
    return out


def trellis_figure(space: SearchSpace, arch: Arch | str | None = None,
                   visits: Mapping[tuple[int, int], float] | None = None, title: str | None = None,
                   height: int = 300) -> go.Figure:
    """The trellis of ``space`` with ``arch``'s path (and ``visits`` per node, if given).

    Traces (by name and ``meta["role"]``): "moves" (every allowed transition), "nodes" (every reachable node; colour
    and size by visits), "path" (stem -> layer 1 .. L -> ASPP, bold). x = layer (0: the stem at
    1/4, L+1: ASPP), y = level (1/4 on top).
    """
    layers = space.reachable
    L = len(layers)
    xs, ys = [], []
    for layer in range(L):
        prev = layers[layer - 1] if layer else (0,)
        for s in layers[layer]:
            for p in prev:
                if abs(p - s) <= 1:
                    xs += [layer, layer + 1, None]
                    ys += [p, s, None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="moves", hoverinfo="skip", showlegend=False,
                             meta={"role": "moves"},
                             line=dict(color="rgba(140,140,140,0.35)", width=1)))
    nx_, ny_, nv, text = [0], [0], [0.0], ["stem (1/4)"]
    for layer in range(L):
        for s in layers[layer]:
            v = float((visits or {}).get((layer + 1, s), 0.0))
            nx_.append(layer + 1)
            ny_.append(s)
            nv.append(v)
            text.append(f"layer {layer + 1} at {_LEVEL_NAMES[s]}" + (f"<br>visits {v:g}" if visits is not None else ""))
    vmax = max(nv) if visits else 0.0
    sizes = [9 + 19 * np.sqrt(v / vmax) if vmax > 0 else 10 for v in nv]
    marker: dict[str, Any] = dict(size=sizes, line=dict(color="white", width=1))
    if visits is not None:
        marker.update(color=nv, colorscale="Blues", cmin=0, cmax=max(vmax, 1.0), showscale=True,
                      colorbar=dict(title="visits", thickness=10, len=0.8))
    else:
        marker.update(color="#c9d3e3")
    fig.add_trace(go.Scatter(x=nx_, y=ny_, mode="markers", name="nodes", text=text, hoverinfo="text", meta={"role": "nodes"},
                             marker=marker, showlegend=False))
    if arch is not None:
        genes = space.parse(arch).genes
        px = [0, *range(1, L + 1), L + 1]
        py = [0, *genes, genes[-1]]
        fig.add_trace(go.Scatter(x=px, y=py, mode="lines+markers", name="path", showlegend=False,
                                 meta={"role": "path"},
                                 line=dict(color=_PATH_COLOR, width=4), marker=dict(size=8, color=_PATH_COLOR),
                                 text=["stem", *[f"layer {i + 1}: {_LEVEL_NAMES[g]}" for i, g in enumerate(genes)],
                                       "ASPP + decoder"], hoverinfo="text"))
    fig.update_layout(**base_layout(title=title or (str(arch) if arch is not None else space.name), height=height))
    fig.update_xaxes(title_text="layer", tickvals=list(range(L + 2)),
                     ticktext=["stem", *[str(i) for i in range(1, L + 1)], "ASPP"], range=[-0.5, L + 1.5])
    fig.update_yaxes(title_text="resolution", tickvals=[0, 1, 2, 3], ticktext=list(_LEVEL_NAMES),
                     autorange="reversed", range=[3.5, -0.5])
    return fig


def mask_figure(images: np.ndarray, truth: np.ndarray, pred: np.ndarray, classes: Sequence[str] | None = None,
                title: str = "validation scenes: image, true mask, predicted mask", iou: Sequence[float | None] | None = None,
                ) -> go.Figure:
    """A few scenes as rows of (image, true mask, predicted mask).

    ``images``: N x 3 x H x W in [0, 1] (or any range: scaled per image); ``truth``/``pred``: N x H x W
    label maps (255 = ignore, drawn grey). ``iou``: per-class IoU listed under the title.
    """
    images, truth, pred = np.asarray(images, float), np.asarray(truth), np.asarray(pred)
    n = len(images)
    if not (len(truth) == len(pred) == n) or truth.shape != pred.shape:
        raise ValueError(f"mask_figure: images, truth and pred must hold the same scenes, got {images.shape}, "
                         f"{truth.shape}, {pred.shape}")
    k = int(max(truth[truth != 255].max(initial=0), pred.max(initial=0))) + 1
    if classes is not None:
        k = max(k, len(classes))
    palette = _palette(k)
    fig = make_subplots(rows=n, cols=3, horizontal_spacing=0.02, vertical_spacing=0.02,
                        column_titles=["image", "truth", "prediction"])
    for i in range(n):
        img = images[i].transpose(1, 2, 0)
        lo, hi = img.min(), img.max()
        img = (img - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(img)
        fig.add_trace(go.Image(z=img.astype(np.uint8), hoverinfo="skip"), row=i + 1, col=1)
        for col, m in ((2, truth[i]), (3, pred[i])):
            rgb = palette[np.where(m == 255, k, np.clip(m, 0, k - 1))]
            names = np.asarray(list(classes) if classes is not None else [str(c) for c in range(k)] + [""] * 0)
            label = np.where(m == 255, "ignore", names[np.clip(m, 0, len(names) - 1)])
            fig.add_trace(go.Image(z=rgb, customdata=label, hovertemplate="%{customdata}<extra></extra>",
                                   name="truth" if col == 2 else "prediction"), row=i + 1, col=col)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    sub = ""
    if iou is not None and classes is not None:
        sub = "<br><sup>IoU: " + ", ".join(f"{c} {v:.2f}" for c, v in zip(classes, iou) if v is not None) + "</sup>"
    fig.update_layout(**base_layout(title=title + sub, height=110 * n + 110))
    fig.update_layout(margin=dict(t=95 if sub else 70))  # the IoU line must not cover the column titles
    return fig


def _palette(k: int) -> np.ndarray:
    """k class colours (class 0, the background, black) and a grey for ignored pixels."""
    import plotly.colors as pc

    base = pc.qualitative.Plotly + pc.qualitative.D3
    cols = [(20, 20, 20)] + [tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for h in base[:max(0, k - 1)]]
    while len(cols) < k:
        cols.append((200, 200, 200))
    cols.append((128, 128, 128))
    return np.asarray(cols, dtype=np.uint8)


__all__ = ["trellis_figure", "trellis_visits", "mask_figure", "is_trellis", "MUTED"]
