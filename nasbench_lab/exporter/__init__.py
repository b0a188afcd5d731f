"""Export a found network (``nl.export`` / ``nl.load_exported``): ``arch.json`` + ``model.safetensors`` + plain-PyTorch ``model.py`` (issue 27).

``export(source, folder)`` writes one folder that needs nothing of nasbench_lab to be used:

- ``arch.json``: space, canonical string, space settings, input shape, classes, params, FLOPs, the
  tabular ground truth when a benchmark has the architecture, and provenance (run id, method, seed,
  step, the supernet's estimate, package and torch versions);
- ``model.safetensors``: the weights (safetensors: plain tensors, no pickle, so loading it runs no
  code). From a run: the supernet path's weights with its BN statistics recalibrated (the
  Trainer's own ``recalibrate_bn``); with ``retrain=True``: the standalone network trained with
  the space's ground-truth recipe (``train_standalone``), its test accuracy recorded;
- ``model.py``: a ``Net`` class that imports only torch (generated per space family,
  :mod:`nasbench_lab.exporter.codegen`), whose state-dict keys are those of the safetensors file.

``load_exported(folder)`` rebuilds the network from the workbench's own classes (it never runs the
folder's ``model.py``: files from outside are data) and gives the same logits bit for bit as
``model.Net()`` + ``safetensors.torch.load_file``.

The folder is written into a temporary sibling and renamed into place, so a failure leaves
nothing half-written; an existing folder is refused unless ``force=True``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from nasbench_lab import __version__, spaces
from nasbench_lab.exporter.codegen import family_of
from nasbench_lab.exporter.codegen import source as model_source
from nasbench_lab.spaces.base import Arch, SearchSpace

__all__ = ["export", "load_exported", "read_info", "inherited_model", "default_folder", "load_snippet", "FORMAT"]

FORMAT = "nasbench_lab-export/1"
#: a fixed batch for the ONNX / torch.export output checks (seeded, independent of the global RNG)
_CHECK_SEED = 27


def _require_safetensors():
    try:
        import safetensors.torch as st
    except ImportError:  # a base dependency; say how to fix a broken environment
        raise ImportError("export needs the 'safetensors' package: pip install safetensors") from None
    return st


def default_folder(name: str) -> Path:
    """``<workspace>/exports/<name>`` (the dashboard's and the CLI's default)."""
    from nasbench_lab import config
    from nasbench_lab.validation import identifier

    return config.workspace() / "exports" / identifier("name", name, "pooling-000100100")


# ------------------------------------------------------------------------------------------ sources
def _load_run(run_id: str, store: Any = None) -> tuple[Any, dict[str, Any]]:
    """The trained job of a stored run and its record (no lease: the checkpoint is only read)."""
    from nasbench_lab.runs import checkpoint
    from nasbench_lab.runs.job import load_job_class
    from nasbench_lab.runs.store import RunStore

    store = store if store is not None else RunStore()
    rec = store.run(run_id)  # KeyError naming the store and recent runs
    path = rec.get("checkpoint")
    if not path:
        raise ValueError(f"export: run {run_id!r} ({rec.get('status')}, step {rec.get('step')}) has no checkpoint "
                         "yet, so there are no weights to export; wait for its first checkpoint or for it to finish")
    data = checkpoint.load(store.checkpoint_file(path))
    job = load_job_class(data["job_class"]).from_config(data["config"])
    job.load_state_dict(data["job"])
    return job, rec


def _final_arch(job: Any, rec: dict[str, Any] | None) -> Arch | None:
    """The run's final architecture: the method's own choice, else the ranking's selected one."""
    sampler = getattr(job, "sampler", None)
    if sampler is not None:
        chosen = sampler.select(job, 1)
        if chosen:
            return job.space.parse(chosen[0])
    ranking = getattr(job, "ranking", None)
    selected = ranking.attrs.get("selected") if ranking is not None else None
    if selected is None and rec is not None:
        selected = (rec.get("summary") or {}).get("selected")
    return job.space.parse(selected) if selected is not None else None


def _unwrap(net: nn.Module, arch: Arch) -> nn.Module:
    """The supernet that runs ``arch`` (a mixture of supernets routes each architecture to one)."""
    nets, router = getattr(net, "nets", None), getattr(net, "router", None)
    if isinstance(nets, nn.ModuleList) and router is not None:
        return nets[router(arch)]
    return net


@torch.no_grad()
def _recalibrate(model: nn.Module, trainer: Any) -> None:
    """BN statistics of a standalone model from the Trainer's recalibration batches (the same
    batches and cumulative average as ``Trainer.recalibrate_bn``)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    bs, n = trainer.cfg.batch_size * 2, trainer.data.train_x.shape[0]
    for b in range(trainer.cfg.recalibration_batches):
        lo = (b * bs) % max(1, n - bs + 1)
        model(trainer.data.train_x[lo:lo + bs].to(next(model.parameters()).device))
    for m in bns:
        m.momentum = 0.1
    model.eval()


def inherited_model(trainer: Any, arch: Arch | str) -> tuple[nn.Module, float]:
    """(standalone network of ``arch`` with the supernet path's weights, the path's validation accuracy).

    The path's BN statistics are recalibrated first (thesis §3.3: the shared statistics mix every
    path), on the supernet itself, so the standalone network in eval mode computes what the
    supernet path computes in eval mode. Every weight of the standalone network must come from
    the supernet (same key, same shape), except BN affine parameters of a supernet built without
    them (they keep 1 and 0, which is what no affine means) and running statistics of a supernet
    that does not track them (recalibrated on the standalone network from the same batches).
    """
    arch = trainer.space.parse(arch)
    fam = family_of(trainer.space)
    supernet = _unwrap(trainer.net, arch)
    trainer.recalibrate_bn(arch)
    estimate = float(trainer.evaluate(arch, "val", recalibrate=False, max_images=trainer.cfg.rank_images))
    model = fam.build(trainer.space, arch, trainer.data.num_classes, fam.settings(trainer.space))
    sd = supernet.state_dict()
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    bad = [k for k in own if k in sd and sd[k].shape != own[k].shape]
    stats = ("running_mean", "running_var", "num_batches_tracked")
    unexplained = [k for k in missing if not k.endswith(stats + ("weight", "bias"))]
    if bad or unexplained:
        raise ValueError(f"export: the supernet of {trainer.space.name} does not hold the weights of {arch} "
                         f"(shape mismatch: {bad[:3]}, missing: {unexplained[:3]})")
    model.load_state_dict({k: sd[k].detach().cpu().contiguous() for k in own if k in sd}, strict=False)
    if any(k.endswith(stats) for k in missing):
        _recalibrate(model, trainer)
    model.eval()
    return model.cpu(), estimate


def _retrained(space: SearchSpace, arch: Arch, net: nn.Module, bundle: Any, seed: int,
               epochs: float | None) -> tuple[nn.Module, dict[str, Any]]:
    """``net`` trained from scratch with the ground-truth builder's recipe (``build_groundtruth``:
    3 epochs on train+val, SGD-Nesterov lr 0.05, batch 64, cosine; test accuracy)."""
    import inspect

    from nasbench_lab.training.groundtruth import build_groundtruth
    from nasbench_lab.training.standalone import train_standalone

    recipe = {k: p.default for k, p in inspect.signature(build_groundtruth).parameters.items()
              if k in ("epochs", "batch_size", "lr")}
    if epochs is not None:
        recipe["epochs"] = epochs
    torch.manual_seed(seed)
    for m in net.modules():  # from scratch, seeded: the recipe trains a fresh network
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    result = train_standalone(space, arch, bundle, seed=seed, net=net, **recipe)
    info = {"test_accuracy": float(result.test_acc), "epochs": float(result.epochs), "dataset": bundle.name,
            "seed": seed, "batch_size": recipe["batch_size"], "lr": recipe["lr"], "seconds": float(result.seconds),
            "recipe": "nasbench_lab.training.groundtruth.build_groundtruth (train+val, test accuracy)"}
    return result.model.cpu().eval(), info


# ------------------------------------------------------------------------------------------ writing
def _atomic_folder(folder: Path, force: bool, fill: Callable[[Path], None]) -> Path:
    """Fill a temporary sibling of ``folder`` and rename it into place (nothing half-written)."""
    folder = Path(folder).expanduser()
    if folder.exists() and not force:
        raise FileExistsError(f"export: {folder} already exists; choose another folder or pass force=True "
                              "(--force) to replace it")
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"export: {folder} exists and is not a folder; it is not replaced")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        fill(tmp)
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _ground_truth(space: SearchSpace, arch: Arch, dataset: str | None) -> dict[str, Any] | None:
    from nasbench_lab import benchmarks

    try:
        bench = benchmarks.get(space.name, dataset) if dataset else benchmarks.get(space.name)
    except (ValueError, KeyError, FileNotFoundError):
        try:
            bench = benchmarks.get(space.name)
        except (ValueError, KeyError, FileNotFoundError):
            return None
    if arch not in bench:
        return None
    return {"benchmark": getattr(bench, "name", space.name), "dataset": getattr(bench, "dataset", None),
            "accuracy": float(bench.query(arch))}


def _versions() -> dict[str, str]:
    st = _require_safetensors()
    import safetensors

    del st
    return {"nasbench_lab": __version__, "torch": torch.__version__, "safetensors": safetensors.__version__,
            "python": platform.python_version()}


def _fixed_batch(space: SearchSpace, n: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(_CHECK_SEED)
    return torch.randn(n, *space.input_shape, generator=g)


def export(source: Any, folder: str | os.PathLike | None = None, *, arch: Arch | str | None = None,
           force: bool = False, retrain: bool = False, epochs: float | None = None,
           formats: Sequence[str] = (), store: Any = None, seed: int = 0, dataset: str | None = None,
           num_classes: int | None = None, settings: dict[str, Any] | None = None,
           run_id: str | None = None) -> Path:
    """Write the export folder of one network and return its path.

    ``source``: a run id in the run store (its checkpoint's supernet and final architecture), a
    Trainer, or a space name / :class:`SearchSpace` with ``arch`` (then the weights are freshly
    initialised from ``seed`` unless ``retrain``). ``arch`` overrides a run's final architecture
    and must belong to the run's space. ``retrain``: train the standalone network with the
    ground-truth recipe (``epochs`` overrides its length) and record its test accuracy.
    ``formats``: also ``"onnx"`` and/or ``"pt2"``, each checked against the eager model on a
    fixed batch before it is written. ``folder`` defaults to ``<workspace>/exports/<name>``.
    ``run_id``: the run a Trainer given as ``source`` belongs to (recorded in the provenance).
    ``settings``: the space family's network settings without a run (e.g. ``{"C": 16, "layers": 8}``
    for a smaller DARTS network; default: the space's own, the DARTS evaluation size).
    """
    bad = [f for f in formats if f not in ("onnx", "pt2")]
    if bad:
        raise ValueError(f"formats: unknown {bad}; valid: 'onnx', 'pt2' (e.g. formats=['pt2'])")
    if folder is not None and Path(folder).expanduser().exists() and not force:  # fail before any work
        raise FileExistsError(f"export: {folder} already exists; choose another folder or pass force=True "
                              "(--force) to replace it")
    from nasbench_lab.training.trainer import Trainer

    rec: dict[str, Any] | None = None
    trainer: Any = None
    if isinstance(source, str) and source not in spaces.names():
        run_id = source
        trainer, rec = _load_run(source, store)
    elif isinstance(source, Trainer):
        trainer = source
    from nasbench_lab.differentiable.trainer import DifferentiableTrainer

    searched: Any = None  # a differentiable search: its derived cell, weights from scratch
    if isinstance(trainer, DifferentiableTrainer) or isinstance(source, DifferentiableTrainer):
        searched = trainer if trainer is not None else source
        trainer = None
        if arch is None and searched.step_count == 0:
            raise ValueError(f"export: run {run_id or '(unsaved)'} has no final architecture yet (no search step "
                             f"done); wait until it finishes, or name one with arch=...")
        chosen_d = searched.space.parse(arch) if arch is not None else searched.derive()[0]
        source, arch, seed = searched.space, chosen_d, int(searched.cfg.seed)
    if trainer is not None:
        if not isinstance(trainer, Trainer):
            raise ValueError(f"export: run {run_id!r} is a {type(trainer).__name__} job; only one-shot supernet and "
                             "differentiable runs have an architecture to export; export one with "
                             "export('SPACE', arch=..., retrain=True)")
        space = trainer.space
        chosen = space.parse(arch) if arch is not None else _final_arch(trainer, rec)
        if chosen is None:
            raise ValueError(f"export: run {run_id or '(unsaved)'} has no final architecture yet (step "
                             f"{trainer.step_count}/{trainer.total_steps}); wait until it finishes, or name one "
                             f"with arch=... (e.g. {space.example!r})")
    else:
        if isinstance(source, str | SearchSpace):
            space = spaces.get(source)
        else:
            raise ValueError(f"export: source must be a run id, a Trainer, a space name or a SearchSpace, "
                             f"got {type(source).__name__} (e.g. export('pooling', arch='[4,3,3]'))")
        if arch is None:
            raise ValueError(f"export: exporting from the space {space.name!r} needs arch=... (e.g. {space.example!r})")
        chosen = space.parse(arch)
    fam = family_of(space)
    defaults = fam.settings(space)
    if settings is not None:
        unknown = sorted(set(settings) - set(defaults))
        if trainer is not None or unknown or not all(isinstance(v, int) and v > 0 for v in settings.values()):
            raise ValueError(f"settings: expected positive integers for {sorted(defaults)} of {space.name} "
                             f"(e.g. {defaults}), and only without a run; got {settings!r}")
    settings = {**defaults, **(settings or {})}
    provenance: dict[str, Any] = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                  "versions": _versions()}
    ds = dataset
    if trainer is not None:
        ds = ds or trainer.cfg.dataset
        classes = trainer.data.num_classes
        model, estimate = inherited_model(trainer, chosen)
        weights = "inherited"
        provenance.update({"run_id": run_id, "method": trainer.cfg.method, "seed": trainer.cfg.seed,
                           "step": trainer.step_count, "dataset": trainer.cfg.dataset,
                           "supernet_val_accuracy": estimate,
                           "mean": list(trainer.data.mean), "std": list(trainer.data.std)})
    else:
        classes = int(num_classes) if num_classes is not None else int(getattr(space, "default_num_classes", 10))
        torch.manual_seed(seed)
        model = fam.build(space, chosen, classes, settings).eval()
        weights = "initialised"
        provenance.update({"seed": seed})
        if searched is not None:
            ds = ds or searched.cfg.dataset
            provenance.update({"run_id": run_id, "method": searched.cfg.method, "step": searched.step_count,
                               "dataset": searched.cfg.dataset,
                               "note": "a differentiable search's weights belong to its relaxed search network, "
                                       "not to the evaluation network: these are initialised; use retrain"})
    retrain_info = None
    if retrain:
        rseed = trainer.cfg.seed if trainer is not None else seed
        rds = ds or "digits"
        from nasbench_lab import data as data_mod

        bundle = data_mod.get(rds, root=trainer.cfg.data_root if trainer is not None else None, seed=rseed)
        classes = int(bundle.num_classes)
        model, retrain_info = _retrained(space, chosen, fam.build(space, chosen, classes, settings), bundle, rseed,
                                         epochs)
        weights = "retrained"
    info = {
        "format": FORMAT, "space": space.name, "arch": str(chosen), "genes": list(chosen.genes),
        "settings": settings, "input_shape": list(space.input_shape), "num_classes": classes,
        "params": int(sum(p.numel() for p in model.parameters())), "flops": _flops(space, chosen, classes, model, settings == defaults),
        "ground_truth": _ground_truth(space, chosen, ds), "weights": weights, "retrain": retrain_info,
        "provenance": provenance,
    }
    code = model_source(space, chosen, classes, settings, __version__)
    name = run_id or f"{space.name}-{_slug(chosen)}"
    target = Path(folder) if folder is not None else default_folder(name)

    def fill(tmp: Path) -> None:
        st = _require_safetensors()
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        st.save_file(state, str(tmp / "model.safetensors"), metadata={"space": space.name, "arch": str(chosen)})
        (tmp / "model.py").write_text(code)
        written = ["arch.json", "model.py", "model.safetensors"]
        notes: dict[str, str] = {}
        for fmt in formats:
            ok, note = _write_format(fmt, model, space, tmp)
            notes[fmt] = note
            if ok:
                written.append(f"model.{fmt}")
        info["files"] = sorted(written)
        if notes:
            info["formats"] = notes
        (tmp / "arch.json").write_text(json.dumps(info, indent=2) + "\n")

    return _atomic_folder(target, force, fill)


def _flops(space: SearchSpace, arch: Arch, classes: int, model: nn.Module, default_size: bool) -> int:
    """MACs of conv and linear weights: the space's count at its own size, else counted on the model."""
    if default_size:
        return int(space.flops(arch, classes))
    from nasbench_lab.nn.flops import count_macs

    return int(count_macs(model, tuple(space.input_shape)))


def _slug(arch: Arch) -> str:
    return "".join(str(g) for g in arch.genes)[:40]


def _write_format(fmt: str, model: nn.Module, space: SearchSpace, tmp: Path) -> tuple[bool, str]:
    """Write ``model.onnx`` / ``model.pt2`` after checking its outputs against the eager model."""
    x = _fixed_batch(space)
    with torch.no_grad():
        want = model(x)
    if fmt == "pt2":
        ep = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))  # any batch size
        with torch.no_grad():
            got = ep.module()(x)
        _check_outputs("torch.export", want, got)
        torch.export.save(ep, str(tmp / "model.pt2"))
        return True, "written, outputs checked on a fixed batch"
    missing = onnx_missing()
    if missing:
        return False, f"skipped: {missing}"
    import onnxruntime as ort

    path = tmp / "model.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["images"], output_names=["logits"],
                      dynamic_shapes=({0: torch.export.Dim.DYNAMIC},), dynamo=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(sess.run(None, {"images": x.numpy()})[0])
    try:
        _check_outputs("ONNX", want, got)
    except ValueError:
        path.unlink()
        raise
    return True, "written, outputs checked on a fixed batch with onnxruntime"


def onnx_missing() -> str | None:
    """Why ``model.onnx`` cannot be written here (a missing optional package), or None."""
    import importlib.util

    gone = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if gone:
        return f"{', '.join(gone)} not installed (pip install 'nasbench_lab[export]')"
    return None


def _check_outputs(what: str, want: torch.Tensor, got: torch.Tensor) -> None:
    if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-4, atol=1e-4):
        diff = float((got - want).abs().max()) if got.shape == want.shape else float("nan")
        raise ValueError(f"export: the {what} model's outputs differ from the eager model's on the check batch "
                         f"(max |diff| {diff:.3g}); it is not written")


# ------------------------------------------------------------------------------------------ loading
def load_snippet(folder: str | os.PathLike) -> str:
    """Code that loads the export at ``folder`` without nasbench_lab (shown by the CLI and the dashboards)."""
    folder = Path(folder)
    return (f"import sys, torch\n"
            f"from safetensors.torch import load_file\n"
            f"sys.path.insert(0, {str(folder)!r})\n"
            f"import model\n"
            f"net = model.Net()\n"
            f"net.load_state_dict(load_file({str(folder / 'model.safetensors')!r}))\n"
            f"net.eval()\n"
            f"# or, with nasbench_lab: net = nasbench_lab.load_exported({str(folder)!r})")


def read_info(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``arch.json`` of an export folder, checked to be one."""
    path = Path(folder).expanduser() / "arch.json"
    if not path.is_file():
        raise FileNotFoundError(f"load_exported: {path} does not exist; expected a folder written by "
                                "nasbench_lab.export (arch.json, model.safetensors, model.py)")
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"load_exported: {path} is not valid JSON ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ValueError(f"load_exported: {path} is not a nasbench_lab export (format {FORMAT!r} expected)")
    return info


def load_exported(folder: str | os.PathLike) -> nn.Module:
    """The exported network in eval mode, built from the workbench's classes (never from the
    folder's ``model.py``: the folder is data) with the weights of ``model.safetensors``."""
    info = read_info(folder)
    settings = info.get("settings") or {}
    try:
        space = spaces.get(info["space"])
    except ValueError:
        if not str(info["space"]).startswith("mobilenet"):
            raise
        from nasbench_lab.exporter.codegen import mobilenet_space

        space = mobilenet_space(str(info["space"]), settings)  # a space registered in another session
    arch = space.parse(info["arch"])
    fam = family_of(space)
    settings = settings or fam.settings(space)
    model = fam.build(space, arch, int(info["num_classes"]), settings)
    st = _require_safetensors()
    state = st.load_file(str(Path(folder).expanduser() / "model.safetensors"))
    model.load_state_dict(state, strict=True)
    return model.eval()
