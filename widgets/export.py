"""ExportButton: the "Export" button of the dashboard, the explorer and the run browser (issue 27).

One click writes the export folder (``arch.json``, ``model.safetensors``, plain-PyTorch
``model.py``: :func:`nasbench_lab.exporter.export`) into ``<workspace>/exports/<name>`` and shows its
path and the lines that load it without nasbench_lab. Pressing it again replaces that folder (it is
the workspace's own copy; a folder the user names elsewhere is never replaced: use the CLI).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W

from ._common import inline_error

#: ``target()`` -> (source for ``export``, keyword arguments, folder name under <workspace>/exports)
Target = Callable[[], tuple[Any, dict[str, Any], str]]


class ExportButton:
    """A button + a result line; ``target`` says what to export when it is pressed."""

    def __init__(self, target: Target, tooltip: str = "write arch.json, model.safetensors and model.py "
                                                       "into the workspace") -> None:
        self.target = target
        self.button = W.Button(description="Export", icon="download", tooltip=tooltip, layout=W.Layout(width="96px"))
        self.button.on_click(lambda _b: self.export())
        self.output = W.HTML("")
        self.folder: Path | None = None
        self.widget = W.VBox([self.button, self.output])

    def export(self) -> Path | None:
        """Export now; the folder, or None with the reason shown inline."""
        from nasbench_lab.exporter import default_folder, export, load_snippet

        self.button.disabled = True
        try:
            source, kwargs, name = self.target()
            self.folder = export(source, default_folder(name), force=True, **kwargs)
        except Exception as exc:  # a widget callback must not raise into nowhere: say it inline
            self.folder = None
            self.output.value = inline_error(f"export: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}")
            return None
        finally:
            self.button.disabled = False
        self.output.value = (f"<div style='font-size:12px'>exported to <code>{html.escape(str(self.folder))}</code>"
                             f"<pre style='font-size:11px;margin:4px 0'>{html.escape(load_snippet(self.folder))}</pre>"
                             "</div>")
        return self.folder
