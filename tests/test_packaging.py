"""Packaging, set-up files and the import layering stay consistent."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _req_names(reqs):
    return {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0].lower() for r in reqs}


def test_environment_yml_matches_pyproject_dependencies():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_reqs = [r for r in pip if not r.startswith("-")]
    assert sorted(env_reqs) == sorted(PYPROJECT["project"]["dependencies"])
    assert "-c constraints.txt" in pip


def test_torch_is_pinned_in_constraints_not_in_pyproject():
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().split()
    assert any(d.startswith("torch>=") for d in PYPROJECT["project"]["dependencies"])


def test_every_package_folder_is_listed_for_setuptools():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "nasbench_lab").rglob("__init__.py")}
    found |= {"nasbench_lab." + ".".join(p.parent.relative_to(ROOT).parts)
              for p in (ROOT / "widgets").rglob("__init__.py")}
    assert found == listed
    assert PYPROJECT["tool"]["setuptools"]["package-dir"]["nasbench_lab.widgets"] == "widgets"


def test_every_folder_that_ships_files_is_a_declared_package_with_its_data():
    """setuptools warns (a wall of text at install) about a folder it can import but was not told
    about, e.g. the benchmark tables: each such folder is a package, and package-data covers its files."""
    package_data = PYPROJECT["tool"]["setuptools"].get("package-data", {})
    for folder in [ROOT / "nasbench_lab", *(p for p in (ROOT / "nasbench_lab").rglob("*") if p.is_dir())]:
        files = [f for f in folder.iterdir() if f.is_file()]
        if "__pycache__" in folder.parts or not files:
            continue
        assert (folder / "__init__.py").is_file(), f"{folder.relative_to(ROOT)} ships files but is no package"
        name = ".".join(folder.relative_to(ROOT).parts)
        data = [f for f in files if f.suffix not in (".py", ".pyc")]
        patterns = package_data.get(name, [])
        missed = [f.name for f in data if not any(f.match(p) for p in patterns)]
        assert not missed, f"{name}: package-data does not ship {missed}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    first_two = [line.split("#")[0].strip() for line in blocks[0].strip().splitlines()][:2]
    assert first_two == ["scripts/lab", "scripts/test"]
    assert "exec scripts/test" in (ROOT / ".ci/run").read_text()


def test_engine_never_imports_ipywidgets():
    offenders = []
    for path in (ROOT / "nasbench_lab").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in ("ipywidgets", "anywidget") for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_importing_the_engine_does_not_load_ipywidgets():
    code = ("import sys, nasbench_lab, nasbench_lab.training, nasbench_lab.runs, nasbench_lab.benchmarks;"
            "print('ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_widgets_are_importable_as_nasbench_lab_widgets():
    out = subprocess.run([sys.executable, "-c", "import nasbench_lab.widgets as w; print(w.__file__)"],
                         capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()).parent == ROOT / "widgets"
