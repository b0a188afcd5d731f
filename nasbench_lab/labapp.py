"""``nasbench-lab lab``: JupyterLab on the start notebook, as a newcomer needs it.

:func:`lab_command` builds the command (pure, tested); :func:`main` prints a short banner with
the URL to open and replaces itself with JupyterLab:

* the server root is the notebook folder (the repo's ``notebooks/`` by default) and JupyterLab
  opens ``00_start_here.ipynb`` as its default URL, so the launch works from any working folder
  (a notebook passed as a path is resolved against the *current* folder, which broke it);
* bound to 127.0.0.1 with a random token (passed in the environment, not on the command line
  where other users of the machine could read it), on the first free port from 8888, so the URL
  printed before the start is the one that works;
* as root (containers, Colab-like machines, CI) it adds ``--allow-root`` and says so; with no
  display it does not try to open a browser and says so;
* JupyterLab's "news" question and update check are switched off by a namespaced settings
  override (``<app dir>/settings/overrides.d/nasbench_lab.json``: defaults only, a user's own
  settings still win), so no pop-up covers the notebook;
* anything after ``--`` goes to JupyterLab unchanged (``nasbench-lab lab -- --port 9999``);
  a port, address or token given there is the one the printed URL uses.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

START_NOTEBOOK = "00_start_here.ipynb"
DEFAULT_PORT = 8888
#: the JupyterLab setting overrides this launcher installs (see the module docstring)
SETTINGS_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


@dataclass
class LabCommand:
    argv: list[str]
    env: dict[str, str]
    url: str
    notes: list[str] = field(default_factory=list)


def default_root() -> Path:
    """The repository's ``notebooks/`` folder (beside the ``nasbench_lab`` package)."""
    return Path(__file__).resolve().parent.parent / "notebooks"


def _flag_value(args: Sequence[str], *names: str) -> str | None:
    """The value of the last ``--name=value`` or ``--name value`` among ``args``."""
    found = None
    for i, a in enumerate(args):
        for n in names:
            if a.startswith(n + "="):
                found = a.split("=", 1)[1]
            elif a == n and i + 1 < len(args):
                found = args[i + 1]
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(start: int = DEFAULT_PORT, tries: int = 50) -> int:
    """The first port from ``start`` nobody listens on (what JupyterLab's port retries would pick)."""
    for port in range(start, start + tries):
        if _port_free(port):
            return port
    raise ValueError(f"--port: no free port in {start}-{start + tries - 1}; pass one, e.g. --port 9999")


def has_display(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether a browser window can open here (macOS and Windows always can; Linux needs X or Wayland)."""
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or env.get("BROWSER"))


def lab_command(root: str | Path | None = None, port: int | None = None, no_browser: bool = False,
                jupyter_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                is_root: bool | None = None) -> LabCommand:
    """The JupyterLab command line, environment and URL for the start notebook (see the module docstring)."""
    env = dict(os.environ if env is None else env)
    extra = [a for a in jupyter_args]
    if extra[:1] == ["--"]:
        extra = extra[1:]
    root = Path(root).expanduser().resolve() if root is not None else default_root()
    if not (root / START_NOTEBOOK).is_file():
        raise FileNotFoundError(f"--root: {root} has no {START_NOTEBOOK}; pass the repository's notebooks/ folder "
                                "(e.g. nasbench-lab lab --root ~/nasbench_lab/notebooks)")
    notes: list[str] = []
    argv = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={root}",
            f"--ServerApp.default_url=/lab/tree/{START_NOTEBOOK}",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.log_level=WARN"]  # a few lines, not JupyterLab's start-up log; errors still show

    ip = _flag_value(extra, "--ip", "--ServerApp.ip")
    if ip is None:
        ip = "127.0.0.1"
        argv.append(f"--ServerApp.ip={ip}")
    given_port = _flag_value(extra, "--port", "--ServerApp.port")
    if given_port is not None:
        try:
            port = int(given_port)
        except ValueError:
            raise ValueError(f"--port: expected a port number, got {given_port!r} (e.g. -- --port 9999)") from None
    else:
        port = free_port() if port is None else int(port)
        if not 0 < port < 65536:
            raise ValueError(f"--port: expected a port number in 1-65535, got {port} (e.g. --port 9999)")
        # exactly this port: the printed URL must be the one that answers
        argv += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]

    token = _flag_value(extra, "--IdentityProvider.token", "--ServerApp.token", "--NotebookApp.token")
    if token is None:
        token = env.get("JUPYTER_TOKEN") or secrets.token_hex(24)
        env["JUPYTER_TOKEN"] = token  # not on the command line, where `ps` shows it to everyone

    if is_root is None:
        is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if is_root and "--allow-root" not in extra:
        argv.append("--allow-root")
        notes.append("running as root (a container or CI?): passing --allow-root to JupyterLab")
    if no_browser or not has_display(env):
        if "--no-browser" not in extra:
            argv.append("--no-browser")
        if not no_browser:
            notes.append("no display here: open the URL below in your browser")
    argv += extra
    host = "127.0.0.1" if ip in ("0.0.0.0", "", "*") else ip  # noqa: S104 - only the URL's host
    url = f"http://{host}:{port}/lab/tree/{START_NOTEBOOK}" + (f"?token={token}" if token else "")
    return LabCommand(argv, env, url, notes)


def install_settings_overrides(app_dir: str | Path | None = None) -> Path | None:
    """Write :data:`SETTINGS_OVERRIDES` to ``<app dir>/settings/overrides.d/nasbench_lab.json``
    (JupyterLab's place for a package's setting defaults); None where it cannot be written."""
    if app_dir is None:  # what jupyterlab.commands.get_app_dir() gives, without its 3-8 s import
        app_dir = os.environ.get("JUPYTERLAB_DIR") or Path(sys.prefix) / "share" / "jupyter" / "lab"
    path = Path(app_dir) / "settings" / "overrides.d" / "nasbench_lab.json"
    text = json.dumps(SETTINGS_OVERRIDES, indent=2) + "\n"
    try:
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    except OSError:
        return None
    return path


def main(root: str | None = None, port: int | None = None, no_browser: bool = False,
         jupyter_args: Sequence[str] = ()) -> int:
    """Print the banner and exec JupyterLab (returns only when the command cannot start)."""
    cmd = lab_command(root, port, no_browser, jupyter_args)
    if install_settings_overrides() is None:
        cmd.notes.append("could not write JupyterLab's settings override: it may ask about news once")
    print("nasbench_lab: starting JupyterLab on the start notebook (Ctrl-C stops it)")
    for note in cmd.notes:
        print(f"  {note}")
    print(f"  open: {cmd.url}", flush=True)
    os.execve(cmd.argv[0], cmd.argv, cmd.env)
    return 0  # pragma: no cover - execve does not return
