"""``nasbench-lab lab``: the JupyterLab command it builds (the browser test runs the real one)."""

from __future__ import annotations

import json
import socket
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
