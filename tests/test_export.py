"""Export (issue 27): arch.json + model.safetensors + plain-PyTorch model.py, loaded back bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nasbench_lab import cli, data, spaces
from nasbench_lab.exporter import export, load_exported, read_info
from nasbench_lab.runs import Run, RunStore
from nasbench_lab.training.trainer import Trainer

SMALL = {"dataset": "digits", "batch_size": 16, "val_batch_size": 32, "recalibration_batches": 2,
         "rank_at_end": False, "channels_last": False, "rank_images": 32}
NB201 = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
EMPTY_NODE = "|none~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"


@pytest.fixture(scope="module")
def digits():
    return data.get("digits")


def _trained(space: str, digits, steps: int = 3, **kw) -> Trainer:
    tr = Trainer(space=space, steps=steps, data=digits, **{**SMALL, **kw})
    for _ in range(steps):
        tr.step()
    return tr


def _fixed_batch(shape) -> torch.Tensor:
    return torch.randn(4, *shape, generator=torch.Generator().manual_seed(5))


def _logits_without_package(folders: list[Path], x: torch.Tensor, tmp: Path) -> list[torch.Tensor]:
    """Logits of ``model.Net()`` + ``safetensors.torch.load_file`` for each folder, computed in a
    fresh interpreter that never imports nasbench_lab (checked on its ``sys.modules``)."""
    from safetensors.torch import load_file, save_file

    save_file({"x": x}, str(tmp / "batch.safetensors"))
    script = textwrap.dedent(f"""
        import importlib.util, sys, torch
        from safetensors.torch import load_file, save_file
        torch.set_num_threads(1)
        x = load_file({str(tmp / 'batch.safetensors')!r})["x"]
        out = {{}}
        for i, folder in enumerate({[str(f) for f in folders]!r}):
            spec = importlib.util.spec_from_file_location(f"model{{i}}", folder + "/model.py")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            net = mod.Net()
            net.load_state_dict(load_file(folder + "/model.safetensors"))
            net.eval()
            with torch.no_grad():
                out[str(i)] = net(x)
        assert not any(m.split(".")[0] == "nasbench_lab" for m in sys.modules), "nasbench_lab was imported"
        save_file(out, {str(tmp / 'logits.safetensors')!r})
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp,
                         env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    got = load_file(str(tmp / "logits.safetensors"))
    return [got[str(i)] for i in range(len(folders))]


def test_supernet_path_equals_exported_model_and_plain_code_is_bit_identical(tmp_path, digits):
    """For pooling, NB-201 and NB-Macro: the exported network (weights inherited, BN recalibrated)
    computes the supernet path's eval-mode logits, and model.py + safetensors in a process without
    nasbench_lab gives exactly load_exported's logits."""
    cases = [("pooling", "[3,4,3]"), ("nb201", NB201), ("nbmacro", "12021100")]
    folders, ref = [], []
    x = _fixed_batch((3, 32, 32))
    for name, arch in cases:
        tr = _trained(name, digits)
        out = export(tr, tmp_path / name, arch=arch)
        info = read_info(out)
        assert info["space"] == name and info["arch"] == str(spaces.get(name).parse(arch))
        assert info["weights"] == "inherited" and info["provenance"]["step"] == 3
        assert sorted(info["files"]) == ["arch.json", "model.py", "model.safetensors"]
        assert info["params"] == spaces.get(name).params(spaces.get(name).parse(arch), 10)
        assert "import nasbench_lab" not in (out / "model.py").read_text()
        model = load_exported(out)
        tr.net.eval()
        with torch.no_grad():
            path_logits = tr.net(x, arch)  # recalibrated by the export, on the supernet itself
            got = model(x)
        assert torch.allclose(got, path_logits, rtol=1e-5, atol=1e-5), (name, (got - path_logits).abs().max())
        # the statistics really were recalibrated (not the fresh 0/1 of an untrained BN)
        bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
        assert float(bn.running_var.sub(1).abs().max()) > 1e-3
        folders.append(out)
        ref.append(got)
    plain = _logits_without_package(folders, x, tmp_path)
    for (name, _), want, got in zip(cases, ref, plain):
        assert torch.equal(want, got), name


@pytest.fixture
def mobilenet_tiny():
    spaces.register("mobilenet-tiny", "nasbench_lab.spaces.mobilenet", "MobileNetSpace", variant="cifar",
                    width_mult=0.25, space_name="mobilenet-tiny")
    yield spaces.get("mobilenet-tiny")
    spaces.unregister("mobilenet-tiny")


@torch.no_grad()
def test_every_exported_family_loads_back_bit_identically_including_odd_cells(tmp_path, mobilenet_tiny):
    """Exports of every family (an NB-201 node with only 'none' edges, NB-Macro identities, a
    ResNet-18 pooling layout, DARTS V1/V2 at a reduced C and depth, MobileNet with SE and ID layers)
    load back bit for bit in a process without the package; BN statistics are randomised first so
    that they matter."""
    from nasbench_lab.spaces.darts import DARTS_V1, DARTS_V2

    small_darts = {"C": 4, "layers": 5}
    cases = [("nb201", EMPTY_NODE, None), ("nbmacro", "01020010", None), ("pooling-resnet18", "[1,1,6,1]", None),
             ("darts", DARTS_V2, small_darts), ("darts", DARTS_V1, small_darts),
             ("mobilenet-tiny", "0A1F-3C20-E005-6B4D-0012-F", None)]
    x = _fixed_batch((3, 32, 32))
    folders = [export(name, tmp_path / f"f{i}", arch=a, seed=i, settings=st) for i, (name, a, st) in enumerate(cases)]
    from safetensors.torch import load_file, save_file

    g = torch.Generator().manual_seed(1)
    for f in folders:  # non-trivial BN statistics, as after training
        sd = load_file(str(f / "model.safetensors"))
        sd = {k: (v + torch.rand(v.shape, generator=g)) if k.endswith(("running_var", "running_mean")) else v
              for k, v in sd.items()}
        save_file(sd, str(f / "model.safetensors"))
    want = [load_exported(f)(x) for f in folders]
    assert read_info(folders[3])["settings"] == small_darts
    for (name, *_), w, got in zip(cases, want, _logits_without_package(folders, x, tmp_path)):
        assert torch.equal(w, got), name
    spaces.unregister("mobilenet-tiny")  # an export loads back without the registration (settings in arch.json)
    assert torch.equal(load_exported(folders[-1])(x), want[-1])


def test_darts_exports_at_its_evaluation_size_by_default(tmp_path):
    from nasbench_lab.spaces.darts import DARTS_V2

    info = read_info(export("darts", tmp_path / "d", arch=DARTS_V2))
    assert info["settings"] == {"C": 36, "layers": 20}
    assert info["params"] == 3_349_342  # DARTS' published 3.3M (no auxiliary head)
    assert "DilConv" in (tmp_path / "d" / "model.py").read_text()


def test_export_from_a_finished_run_in_the_store(tmp_path, digits):
    store = RunStore(tmp_path / "runs.sqlite")
    run = Run(Trainer(space="pooling", steps=4, data=digits, **{**SMALL, "rank_at_end": True}),
              store=store, checkpoint_every=100)
    run.start().result(timeout=300)
    selected = store.run(run.run_id)["summary"]["selected"]
    out = export(run.run_id, tmp_path / "exp", store=store)
    info = json.loads((out / "arch.json").read_text())
    assert info["arch"] == selected
    prov = info["provenance"]
    assert prov["run_id"] == run.run_id and prov["method"] == "uniform" and prov["step"] == 4
    assert 0.0 <= prov["supernet_val_accuracy"] <= 100.0
    assert prov["versions"]["torch"] == torch.__version__
    assert info["ground_truth"] is not None and info["ground_truth"]["accuracy"] > 0
    # the CLI on the same run writes the same weights (the checkpoint is only read, nothing drifts)
    rc = cli.main(["export", run.run_id, "--store", str(store.path), "--out", str(tmp_path / "cli")])
    assert rc == 0
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "cli" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the same weights, bit for bit


def test_cli_export_space_arch_refuses_existing_folder_unless_force(tmp_path, capsys):
    out = tmp_path / "net"
    assert cli.main(["export", "--space", "nbmacro", "--arch", "22212220", "--out", str(out)]) == 0
    assert "load_file" in capsys.readouterr().out
    assert cli.main(["export", "--space", "nbmacro", "--arch", "11111111", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and read_info(out)["arch"] == "22212220"
    assert cli.main(["export", "--space", "nbmacro", "--arch", "11111111", "--out", str(out), "--force"]) == 0
    assert read_info(out)["arch"] == "11111111"
    assert cli.main(["export", "--space", "nbmacro", "--arch", "[4,3,3]", "--out", str(tmp_path / "x")]) == 2
    assert "22212220" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert cli.main(["export", "--out", str(tmp_path / "y")]) == 2


def test_bad_input_is_refused_and_nothing_is_half_written(tmp_path, digits):
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(KeyError, match="no run 'nope'"):
        export("nope", tmp_path / "a", store=store)
    # a run without a final architecture (no ranking, uniform sampler makes no choice)
    run = Run(Trainer(space="pooling", steps=2, data=digits, **SMALL), store=store, checkpoint_every=100)
    run.start().result(timeout=300)
    with pytest.raises(ValueError, match="no final architecture yet"):
        export(run.run_id, tmp_path / "b", store=store)
    # an architecture string of another space
    with pytest.raises(ValueError, match="pooling"):
        export(run.run_id, tmp_path / "c", store=store, arch=NB201)
    with pytest.raises(ValueError, match="arch"):
        export("nb201", tmp_path / "d")
    # an existing folder is refused (before any work), replaced with force
    out = export("nbmacro", tmp_path / "e", arch="22212220")
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="force"):
        export("nbmacro", out, arch="11111111")
    assert (out / "model.safetensors").read_bytes() == before
    export("nbmacro", out, arch="11111111", force=True)
    assert read_info(out)["arch"] == "11111111"
    # a failure while writing leaves neither the folder nor a temporary sibling
    with pytest.raises(ValueError, match="formats"):
        export("nbmacro", tmp_path / "f", arch="22212220", formats=["tflite"])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".f", "f"))) == []
    with pytest.raises(ValueError, match="cannot be exported yet|exportable"):
        from nasbench_lab.exporter.codegen import family_of

        family_of(type("S", (), {"name": "nope"})())


@torch.no_grad()
def _accuracy(model: torch.nn.Module, xs: torch.Tensor, ys: torch.Tensor) -> float:
    return 100.0 * sum(int((model(xs[lo:lo + 512]).argmax(1) == ys[lo:lo + 512]).sum())
                       for lo in range(0, xs.shape[0], 512)) / xs.shape[0]


def test_retrain_trains_with_the_ground_truth_recipe_and_records_the_test_accuracy(tmp_path, digits):
    out = export("pooling", tmp_path / "r", arch="[2,4,4]", retrain=True, epochs=2, dataset="digits")
    info = read_info(out)
    assert info["weights"] == "retrained"
    r = info["retrain"]
    assert r["epochs"] == 2 and r["lr"] == 0.05 and r["batch_size"] == 64 and r["dataset"] == "digits"
    # the recorded accuracy is the exported network's own on the test split
    model = load_exported(out)
    assert r["test_accuracy"] == pytest.approx(_accuracy(model, digits.test_x, digits.test_y), abs=1e-9)
    assert r["test_accuracy"] > 10.0 + 5  # trained: above chance on 10 digits
    fresh = load_exported(export("pooling", tmp_path / "i", arch="[2,4,4]"))
    assert _accuracy(fresh, digits.test_x, digits.test_y) < r["test_accuracy"]


def test_pt2_is_written_after_its_output_check_and_loads_back(tmp_path):
    """torch.export's program gives the eager logits on a fixed batch (NB-201 with an average pooling)."""
    out = export("nb201", tmp_path / "p", arch=NB201, formats=["pt2"])
    info = read_info(out)
    assert "model.pt2" in info["files"] and info["formats"]["pt2"].startswith("written")
    prog = torch.export.load(str(out / "model.pt2"))
    x = _fixed_batch((3, 32, 32))
    with torch.no_grad():
        assert torch.allclose(prog.module()(x), load_exported(out)(x), rtol=1e-5, atol=1e-5)


def test_onnx_is_written_after_its_output_check(tmp_path):
    from nasbench_lab.exporter import onnx_missing

    missing = onnx_missing()
    if missing:
        # the optional extra 'export' is not installed: the export still succeeds and says why
        out = export("nbmacro", tmp_path / "o", arch="22212220", formats=["onnx"])
        assert read_info(out)["formats"]["onnx"] == f"skipped: {missing}"
        assert not (out / "model.onnx").exists()
        pytest.skip(f"ONNX output check needs the optional packages: {missing}")
    out = export("nbmacro", tmp_path / "o", arch="22212220", formats=["onnx"])
    assert (out / "model.onnx").is_file() and read_info(out)["formats"]["onnx"].startswith("written")


def test_export_buttons_of_explorer_browser_and_dashboard(tmp_path):
    """Widget level (no browser): each Export button writes <workspace>/exports/<name> and shows its path
    and the loading snippet; a run without a final architecture says so inline. Runs in a subprocess
    that imports this checkout's widgets/ as nasbench_lab.widgets (an editable install may map the
    name to another checkout)."""
    root = Path(__file__).resolve().parents[1]
    script = textwrap.dedent(f"""
        import importlib.util, sys
        sys.path.insert(0, {str(root)!r})
        import nasbench_lab
        spec = importlib.util.spec_from_file_location("nasbench_lab.widgets", {str(root / 'widgets' / '__init__.py')!r},
                                                      submodule_search_locations=[{str(root / 'widgets')!r}])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["nasbench_lab.widgets"] = mod
        spec.loader.exec_module(mod)
        import torch
        torch.set_num_threads(1)
        from nasbench_lab import config
        from nasbench_lab.exporter import read_info
        from nasbench_lab.runs import Run, RunStore
        from nasbench_lab.training.trainer import Trainer
        from nasbench_lab.widgets import ArchitectureExplorer, RunBrowser, RunDashboard
        exports = config.workspace() / "exports"

        ex = ArchitectureExplorer("nbmacro", arch="22212220")
        ex.export.button.click()
        assert "exported to" in ex.export.output.value and "load_file" in ex.export.output.value, ex.export.output.value
        assert read_info(exports / "nbmacro-22212220")["arch"] == "22212220"
        ex.select("11111111")
        ex.export.button.click()
        assert read_info(exports / "nbmacro-11111111")["weights"] == "initialised"

        store = RunStore({str(tmp_path / 'runs.sqlite')!r})
        small = dict(space="pooling", dataset="digits", batch_size=16, val_batch_size=32, recalibration_batches=1,
                     channels_last=False, rank_images=16)
        bare = Run(Trainer(steps=2, rank_at_end=False, **small), store=store)
        bare.start().result(timeout=300)
        ranked = Run(Trainer(steps=2, **small), store=store)
        ranked.start().result(timeout=300)

        br = RunBrowser(store)
        br.open(bare.run_id)
        br.export.button.click()
        assert "no final architecture yet" in br.export.output.value, br.export.output.value
        assert not (exports / bare.run_id).exists()
        br.open(ranked.run_id)
        assert br.export.output.value == ""
        br.export.button.click()
        info = read_info(exports / ranked.run_id)
        assert info["provenance"]["run_id"] == ranked.run_id and info["weights"] == "inherited"
        assert str(exports / ranked.run_id) in br.export.output.value

        dash = RunDashboard(ranked, auto_refresh=False)
        (exports / ranked.run_id / "arch.json").unlink()
        dash.export.button.click()
        assert read_info(exports / ranked.run_id)["arch"] == info["arch"], dash.export.output.value
        dash.close()
        print("OK")
    """)
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "NASBENCH_LAB_HOME": str(tmp_path / "ws"),
           "HOME": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-4000:]
