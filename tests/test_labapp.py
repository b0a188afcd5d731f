"""``nasbench-lab lab``: the JupyterLab command it builds (the browser test runs the real one)."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from nasbench_lab import labapp
from nasbench_lab.cli import build_parser, main

REPO = Path(__file__).resolve().parent.parent


def _flag(argv: list[str], name: str) -> str | None:
    return next((a.split("=", 1)[1] for a in argv if a.startswith(name + "=")), None)


def test_the_start_notebook_opens_from_any_folder_on_localhost_with_a_token(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the old command passed the notebook relative to the current folder
    cmd = labapp.lab_command(env={"DISPLAY": ":0"}, is_root=False)
    assert _flag(cmd.argv, "--ServerApp.root_dir") == str(REPO / "notebooks")
    assert _flag(cmd.argv, "--ServerApp.default_url") == "/lab/tree/00_start_here.ipynb"
    assert not any(a.endswith(".ipynb") and not a.startswith("--") for a in cmd.argv)  # no path argument
    assert _flag(cmd.argv, "--ServerApp.ip") == "127.0.0.1"
    port = int(_flag(cmd.argv, "--ServerApp.port"))
    assert _flag(cmd.argv, "--ServerApp.port_retries") == "0"  # that port or none: the URL stays right
    token = cmd.env["JUPYTER_TOKEN"]
    assert len(token) >= 32 and token not in " ".join(cmd.argv)  # in the environment, not in `ps`
    assert cmd.url == f"http://127.0.0.1:{port}/lab/tree/00_start_here.ipynb?token={token}"
    assert "--allow-root" not in cmd.argv and "--no-browser" not in cmd.argv and cmd.notes == []
    # no news question, no update check
    assert "--LabApp.news_url=None" in cmd.argv
    assert _flag(cmd.argv, "--LabApp.check_for_updates_class") == "jupyterlab.NeverCheckForUpdate"


def test_root_and_no_display_are_handled_and_said():
    cmd = labapp.lab_command(env={}, is_root=True)
    assert "--allow-root" in cmd.argv and "--no-browser" in cmd.argv
    assert any("--allow-root" in n for n in cmd.notes) and any("no display" in n for n in cmd.notes)
    mac = labapp.lab_command(env={}, is_root=False, no_browser=True)
    assert "--no-browser" in mac.argv and mac.notes == []  # asked for: nothing to explain


def test_jupyterlab_flags_after_the_separator_pass_through_and_shape_the_url():
    cmd = labapp.lab_command(jupyter_args=["--", "--port", "9999", "--IdentityProvider.token=abc",
                                           "--ServerApp.log_level=INFO"], env={"DISPLAY": ":0"}, is_root=False)
    assert cmd.url == "http://127.0.0.1:9999/lab/tree/00_start_here.ipynb?token=abc"
    assert cmd.argv[-4:] == ["--port", "9999", "--IdentityProvider.token=abc", "--ServerApp.log_level=INFO"]
    assert _flag(cmd.argv, "--ServerApp.port") is None and "JUPYTER_TOKEN" not in cmd.env
    # the user's log level comes after the launcher's quiet default, so it wins
    assert cmd.argv.index("--ServerApp.log_level=WARN") < cmd.argv.index("--ServerApp.log_level=INFO")
    args = build_parser().parse_args(["lab", "--no-browser", "--", "--port", "9999"])
    assert args.no_browser and args.jupyter_args[-2:] == ["--port", "9999"]


def test_a_busy_port_is_skipped_and_bad_input_is_an_error(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        assert labapp.free_port(busy, tries=20) > busy
    with pytest.raises(ValueError, match="--port: expected a port number"):
        labapp.lab_command(jupyter_args=["--", "--port", "http"], env={})
    assert main(["lab", "--root", str(REPO / "tests")]) == 2
    err = capsys.readouterr().err
    assert "--root:" in err and "00_start_here.ipynb" in err and "nasbench-lab lab --root" in err


def test_the_settings_override_turns_the_news_question_off(tmp_path):
    path = labapp.install_settings_overrides(tmp_path)
    assert path == tmp_path / "settings" / "overrides.d" / "nasbench_lab.json"
    notification = json.loads(path.read_text())["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "settings").write_text("a file where the folder should be")
    assert labapp.install_settings_overrides(tmp_path / "ro") is None  # cannot write: no crash


# ---------------------------------------------------------------------------- the first launch (issue 23, section 4)
#: a stand-in for JupyterLab: logs like it, listens only after a delay (as JupyterLab does for
#: 6-9 s), answers HTTP, and exits after ``SERVE`` requests
FAKE_SERVER = r'''
import http.server, sys, time
port, delay, serve, rc = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print("[I 2026-01-01 00:00:00.000 LabApp] JupyterLab extension loaded", flush=True)
print("[W 2026-01-01 00:00:00.000 ServerApp] kernel transport is not encrypted", flush=True)
print("/x/y.py:3: DeprecationWarning: old API", flush=True)
print("  warnings.warn(", flush=True)
print("[E 2026-01-01 00:00:00.000 ServerApp] a real error", flush=True)
print("    its second line", flush=True)
time.sleep(delay)
if rc:
    print("[C 2026-01-01 00:00:00.000 ServerApp] the port is not available", flush=True)
    sys.exit(rc)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a):
        print("[W 2026-01-01 00:00:00.000 ServerApp] websocket ping timeout", flush=True)
srv = http.server.HTTPServer(("127.0.0.1", port), H)
for _ in range(serve):
    srv.handle_request()
'''


def _fake_lab(tmp_path, monkeypatch, delay=1.0, serve=2, rc=0):
    script = tmp_path / "fake_jupyter.py"
    script.write_text(FAKE_SERVER)
    port = labapp.free_port(20000 + (hash(str(tmp_path)) % 20000))
    url = f"http://127.0.0.1:{port}/lab/tree/00_start_here.ipynb?token=abc"
    cmd = labapp.LabCommand([sys.executable, str(script), str(port), str(delay), str(serve), str(rc)],
                            dict(os.environ), url, [])
    monkeypatch.setattr(labapp, "lab_command", lambda *a, **k: cmd)
    monkeypatch.setattr(labapp, "install_settings_overrides", lambda *a: tmp_path)

    def no_exec(*a):
        raise AssertionError("the launcher replaced itself with JupyterLab before the server answered")
    monkeypatch.setattr(os, "execve", no_exec)
    return port, url


class _Terminal(io.StringIO):
    """stdout that, the moment the URL is printed, opens it as a newcomer would."""

    def __init__(self, port):
        super().__init__()
        self.port, self.opened = port, []

    def write(self, text):
        if "open: " in text:
            self.opened.append(labapp.answers(f"http://127.0.0.1:{self.port}/api"))
        return super().write(text)


def test_the_url_is_printed_once_the_server_answers(tmp_path, monkeypatch, capsys):
    port, url = _fake_lab(tmp_path, monkeypatch, delay=1.0)
    term = _Terminal(port)
    monkeypatch.setattr(sys, "stdout", term)
    assert labapp.main() == 0
    out = term.getvalue()
    assert "starting..." in out and f"open: {url}" in out
    assert out.index("starting...") < out.index("open: ")
    assert term.opened == [True]  # the URL answered at the moment it was printed (before: refused)


def test_jupyterlab_warnings_stay_out_of_the_terminal_unless_verbose(tmp_path, monkeypatch, capsys):
    _fake_lab(tmp_path, monkeypatch, delay=0.2, serve=1)
    assert labapp.main() == 0
    err = capsys.readouterr().err
    assert "[E 2026-01-01 00:00:00.000 ServerApp] a real error\n    its second line" in err  # errors pass
    assert "not encrypted" not in err and "ping timeout" not in err and "DeprecationWarning" not in err
    assert "warnings.warn" not in err and "LabApp" not in err
    assert labapp.main(verbose=True) == 0
    err = capsys.readouterr().err
    assert "kernel transport is not encrypted" in err and "websocket ping timeout" in err
    assert "DeprecationWarning" in err and "a real error" in err


def test_a_server_that_dies_before_answering_is_said_with_its_held_back_lines(tmp_path, monkeypatch, capsys):
    _fake_lab(tmp_path, monkeypatch, delay=0.1, rc=3)
    assert labapp.main() == 3
    out, err = capsys.readouterr()
    assert "open:" not in out  # never a URL that does not answer
    assert "the port is not available" in err and "exited with code 3" in err
    assert "kernel transport is not encrypted" in err.split("exited with code 3")[1]  # now shown, to diagnose


def test_log_filter_keeps_errors_and_continuations():
    show = labapp.LogFilter()
    lines = ["[W 2026 ServerApp] 403 GET /api\n", "  detail of the warning\n", "[E 2026 ServerApp] boom\n",
             "Traceback (most recent call last):\n", '  File "x.py", line 1\n', "[C 2026 ServerApp] received signal 15, stopping\n"]
    assert [show(x) for x in lines] == [False, False, True, True, True, False]
    assert list(show.hidden) == [lines[0], lines[1], lines[5]]


def test_an_address_beyond_this_machine_is_said_loudly():
    cmd = labapp.lab_command(jupyter_args=["--", "--ip", "0.0.0.0", "--port", "9999"], env={"DISPLAY": ":0"},
                             is_root=False)
    assert cmd.url.startswith("http://127.0.0.1:9999/")
    warning = next(n for n in cmd.notes if n.startswith("WARNING"))
    assert "EVERY network interface" in warning and "--ip 0.0.0.0" in warning and "127.0.0.1" in warning
    open_ = labapp.lab_command(jupyter_args=["--", "--ip=10.1.2.3", "--IdentityProvider.token="],
                               env={"DISPLAY": ":0"}, is_root=False)
    assert any("10.1.2.3" in n and "NO token" in n for n in open_.notes)
    assert labapp.lab_command(env={"DISPLAY": ":0"}, is_root=False).notes == []  # 127.0.0.1: nothing to say


def test_ctrl_c_stops_jupyterlab_and_its_server(tmp_path):
    import signal
    import subprocess

    script = tmp_path / "fake_jupyter.py"
    script.write_text(FAKE_SERVER)
    port = labapp.free_port(21000)
    launcher = tmp_path / "launch.py"
    launcher.write_text(
        "import os, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal\n"
        "from nasbench_lab import labapp\n"
        f"cmd = labapp.LabCommand([sys.executable, {str(script)!r}, '{port}', '0.2', '1000', '0'], dict(os.environ),"
        f" 'http://127.0.0.1:{port}/lab?token=abc', [])\n"
        "labapp.lab_command = lambda *a, **k: cmd\n"
        "labapp.install_settings_overrides = lambda *a: '.'\n"
        "sys.exit(labapp.main())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(launcher)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "open: " in line:
                break
        assert any("open: " in x for x in lines), lines
        assert labapp.answers(f"http://127.0.0.1:{port}/api")
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, lines + [rest]
    assert "stopping JupyterLab" in rest and "Traceback" not in rest
    assert not labapp.answers(f"http://127.0.0.1:{port}/api")  # the server went with it
