"""``nasbench-lab lab``: JupyterLab on the start notebook, as a newcomer needs it.

:func:`lab_command` builds the command (pure, tested); :func:`main` prints a short banner, starts
JupyterLab, and prints the URL to open once the server answers (until then it says "starting...":
a URL opened before JupyterLab listens is refused, for 6-9 s on a quiet machine):

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
  a port, address or token given there is the one the printed URL uses; an address other than
  this machine's own (``-- --ip 0.0.0.0``) is said with a WARNING;
* JupyterLab's errors reach the terminal; its info and warning records (unencrypted kernel
  transport, websocket timeouts) only with ``--verbose`` (:class:`LogFilter`).
"""

from __future__ import annotations

import collections
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
            "--ServerApp.log_level=WARN"]  # not its start-up log; warnings reach the terminal with --verbose

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
    host = "127.0.0.1" if ip in ("0.0.0.0", "", "*", "::") else ip  # noqa: S104 - only the URL's host
    if ip not in ("127.0.0.1", "localhost", "::1"):  # the user's -- --ip: said loudly, never silently
        where = "EVERY network interface" if host != ip else ip
        guard = ("guarded only by the token in the URL (keep it to yourself)" if token else
                 "with NO token: anyone who reaches it can run code as you")
        notes.append(f"WARNING: JupyterLab listens on {where} (--ip {ip or repr(ip)}), not only on this machine: "
                     f"other machines that reach port {port} here reach it, {guard}"
                     + (f"; the URL below uses {host}, this machine's own address" if host != ip else ""))
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


#: a JupyterLab log record's first line: ``[W 2025-01-01 12:00:00.000 ServerApp] text``
_RECORD = re.compile(r"^\[([DIWEC]) [^\]]*\]")
#: a Python warning printed by JupyterLab's process: ``/path/mod.py:12: DeprecationWarning: text``
_PY_WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ")
#: critical records the launcher says in its own words
_SAID_HERE = ("received signal",)


class LogFilter:
    """Which lines of JupyterLab's output reach a newcomer's terminal: its errors (``[E``, ``[C``
    records, tracebacks, anything unformatted) do; its info and warning records (unencrypted
    kernel transport, websocket timeouts, 403s of stale browser tabs) and Python warnings do not,
    unless ``verbose``. A record's continuation lines follow its first line. ``hidden`` keeps the
    last lines held back, shown if JupyterLab stops before it answers."""

    def __init__(self, verbose: bool = False, keep: int = 40) -> None:
        self.verbose = verbose
        self.hidden: collections.deque[str] = collections.deque(maxlen=keep)
        self._showing = True

    def __call__(self, line: str) -> bool:
        if self.verbose:
            return True
        record = _RECORD.match(line)
        if record:
            self._showing = record.group(1) in "EC" and not any(s in line for s in _SAID_HERE)
        elif _PY_WARNING.match(line):
            self._showing = False
        elif not line[:1].isspace() and line.strip():
            self._showing = True  # a line of its own (a traceback's first line, a message)
        if not self._showing:
            self.hidden.append(line)
        return self._showing


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a web server answers at ``url`` (any HTTP status counts; proxies are bypassed,
    since the server is on this machine)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        opener.open(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return True  # it answered, with an error status
    except (OSError, ValueError):  # refused, reset, timed out: not listening yet
        return False
    return True


def _probe_url(url: str) -> str:
    """The server's ``/api`` endpoint (answers without a token) behind the notebook URL."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/api", "", ""))


def _pump(stream: Any, show: LogFilter, out: Any) -> None:
    for line in stream:
        if show(line):
            out.write(line)
            out.flush()


def main(root: str | None = None, port: int | None = None, no_browser: bool = False,
         jupyter_args: Sequence[str] = (), verbose: bool = False) -> int:
    """Start JupyterLab, print its URL once the server answers, relay its errors (and, with
    ``verbose``, everything it prints), and stop it on Ctrl-C; returns its exit code (0 after Ctrl-C).

    JupyterLab runs as a child in its own session, so Ctrl-C reaches this launcher only, which
    stops the server (SIGTERM: kernels shut down cleanly) instead of JupyterLab's y/n question.
    """
    cmd = lab_command(root, port, no_browser, jupyter_args)
    if install_settings_overrides() is None:
        cmd.notes.append("could not write JupyterLab's settings override: it may ask about news once")
    print("nasbench_lab: starting JupyterLab on the start notebook (Ctrl-C stops it)")
    for note in cmd.notes:
        print(f"  {note}")
    print("  starting... (the URL follows once the server answers)", flush=True)
    t0 = time.perf_counter()
    show = LogFilter(verbose)
    proc = subprocess.Popen(cmd.argv, env=cmd.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
                            start_new_session=os.name == "posix")
    pump = threading.Thread(target=_pump, args=(proc.stdout, show, sys.stderr), daemon=True)
    pump.start()

    def stop(*_: Any) -> None:
        if proc.poll() is None:
            proc.terminate()

    signals = [signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    in_main = threading.current_thread() is threading.main_thread()  # only there can handlers be set
    previous = {sig: signal.signal(sig, stop) for sig in signals} if in_main else {}
    stopped = False
    try:
        probe = _probe_url(cmd.url)
        while proc.poll() is None and not answers(probe):
            time.sleep(0.1)
        if proc.poll() is None:
            print(f"  open: {cmd.url}   (ready after {time.perf_counter() - t0:.1f} s)", flush=True)
        rc = proc.wait()
    except KeyboardInterrupt:
        stopped = True
        print("\nnasbench_lab: stopping JupyterLab...", flush=True)
        stop()
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop()
        pump.join(timeout=5)
    if stopped:
        return 0
    rc = 128 - rc if rc < 0 else rc  # killed by signal N: the shell's 128 + N
    if rc != 0 and show.hidden:
        print(f"nasbench_lab: JupyterLab exited with code {rc}; its last lines held back:", file=sys.stderr)
        sys.stderr.write("".join(show.hidden))
    return rc
