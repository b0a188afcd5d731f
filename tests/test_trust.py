"""Hostile input and crashes (issue 14): nothing runs code it should not, nothing lands outside the
workspace, no bad value is silently replaced. One section per item of the issue."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nasbench_lab import benchmarks, spaces
from nasbench_lab import data as data_mod
from nasbench_lab.cli import main
from nasbench_lab.data import cifar, safe_pickle
from nasbench_lab.runs import Run, RunStore
from nasbench_lab.runs import checkpoint as ckpt
from nasbench_lab.runs import store as store_mod
from nasbench_lab.spaces.darts import DARTS_V2, parse_genotype
from nasbench_lab.training.groundtruth import build_groundtruth
from nasbench_lab.training.trainer import Trainer

sys.path.insert(0, os.path.dirname(__file__))
from test_runs import Walk  # noqa: E402  (a small real job with an RNG: exact resume checks)

TINY = {"space": "pooling", "dataset": "digits", "steps": 2, "batch_size": 8, "val_batch_size": 8,
        "rank_at_end": False, "augment": False}


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse rejects a flag value: exit status 2 and a message
        code = int(exc.code)
    out = capsys.readouterr()
    return code, out.out, out.err


class Planted:
    """A pickle payload that would create ``marker`` if anything ever called it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


# ============================================================================ 1. genotype grammar
def test_genotype_ranges_are_read_as_bounds_never_expanded():
    sp = spaces.get("darts")
    huge = DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(0, 3000000000)")
    with pytest.raises(ValueError, match=r"darts: .*range\(0, 3000000000\) is not a cell's node list"):
        sp.parse(huge)  # the old parser built a 3e9-element list (OOM-killed at 23 GB)
    assert sp.parse(DARTS_V2.replace("[2, 3, 4, 5]", "range(2, 6)")) == sp.parse(DARTS_V2)
    for bad in ("range()", "range('a')", "range(2, 6, 0)"):
        with pytest.raises(ValueError, match="^darts: "):
            sp.parse(DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", f"normal_concat={bad}"))


@pytest.mark.parametrize("text, why", [
    ("Genotype(normal=__import__('os').system('true'))", "'\\[' to open normal"),
    (DARTS_V2.replace("0), ('sep_conv_3x3', 1)", "0.5), ('sep_conv_3x3', 1)", 1), "input node number"),
    (DARTS_V2 + ")", "after the closing"),
    (DARTS_V2.replace("normal=", "normal=[], normal=", 1), "given twice"),
    ("Genotype(" + "[" * 5000, "at most 4000"),
])
def test_genotype_text_outside_the_grammar_is_a_value_error(text, why):
    with pytest.raises(ValueError, match=why):
        spaces.get("darts").parse(text)
    # the grammar itself gives the published genotype field by field
    g = parse_genotype(DARTS_V2)
    assert g["normal"][7] == ("dil_conv_3x3", 2) and g["reduce_concat"] == [2, 3, 4, 5]


# ============================================================================ 2. checkpoints are data
def _payload_file(path: Path, planted: object, header: bool) -> None:
    """A checkpoint an attacker could write: a real torch zip, format tag and all (and, with
    ``header``, the integrity header with a correct digest: the digest guards against damage,
    not against whoever writes the file)."""
    buf = io.BytesIO()
    torch.save({"format": ckpt.FORMAT, "run_id": "r1", "job_class": "test_runs:Walk", "config": {}, "job": planted,
                "rng": ckpt.rng_state(), "meta": {}}, buf)
    body = buf.getvalue()
    import hashlib
    path.write_bytes((ckpt.MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" if header else b"") + body)


@pytest.mark.parametrize("header", [True, False], ids=["format2", "legacy-zip"])
def test_a_planted_reduce_in_a_checkpoint_never_runs(tmp_path, header):
    marker = tmp_path / "PWNED"
    path = tmp_path / "checkpoints" / "r1" / "last.pt"
    path.parent.mkdir(parents=True)
    _payload_file(path, Planted(marker), header)
    with pytest.raises(ValueError, match="not data and was refused"):
        Run.resume(path, store=False, allow_unsigned=not header)  # an unsigned file only when asked for
    assert not marker.exists()  # weights_only=True: the global pathlib.Path.touch was never called


def test_a_flipped_byte_is_detected(tmp_path):
    run = Run(Walk(20, seed=1), store=RunStore(tmp_path / "s.sqlite"), checkpoint_dir=tmp_path / "ck")
    run.step(5)
    path = run.checkpoint()
    run.stop()
    raw = bytearray(path.read_bytes())
    for where in (len(raw) // 2, len(raw) - 30, len(ckpt.MAGIC) + 3):
        bad = tmp_path / f"flip{where}" / "last.pt"
        bad.parent.mkdir()
        flipped = bytearray(raw)
        flipped[where] ^= 0x01
        bad.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match="truncated or corrupt"):
            ckpt.load(bad)
    assert ckpt.load(path)["step"] == 5  # the intact file still loads


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    a = Run(Walk(30, seed=1), store=store, checkpoint_dir=tmp_path / "ck")
    b = Run(Walk(30, seed=2), store=store, checkpoint_dir=tmp_path / "ck")
    for r in (a, b):
        r.step(4)
        r.stop()
    shutil.copy(a.checkpoint_path, b.checkpoint_path)  # A's last.pt copied over B's
    with pytest.raises(ValueError, match=f"belongs to run '{a.run_id}', not to run '{b.run_id}'"):
        Run.resume(b.run_id, store=store)
    with pytest.raises(ValueError, match=f"folder of run '{b.run_id}' but was written by run '{a.run_id}'"):
        Run.resume(b.checkpoint_path, store=store)
    # a checkpoint whose space differs from the store's record of its run is refused too
    tr = Trainer(**TINY)
    t = Run(tr, store=store, checkpoint_dir=tmp_path / "ck")
    t.step(1)
    t.stop()
    data = ckpt.load(t.checkpoint_path)
    data["config"]["space"] = data["meta"]["space"] = "nbmacro"
    del data["format"], data["rng"]
    ckpt.save(t.checkpoint_path, data)
    with pytest.raises(ValueError, match=r"space: 'pooling' vs 'nbmacro'"):
        Run.resume(t.run_id, store=store)


def test_a_checkpoint_naming_an_arbitrary_job_class_imports_nothing(tmp_path):
    assert "this" not in sys.modules  # importing `this` prints the Zen of Python: a visible side effect
    path = tmp_path / "r2" / "last.pt"
    ckpt.save(path, {"job_class": "this:Walk", "config": {}, "meta": {}, "job": {}, "run_id": "r2", "step": 0})
    with pytest.raises(ValueError, match="not a known job class"):
        Run.resume(path, store=False)
    assert "this" not in sys.modules


def test_saving_state_that_would_not_load_names_the_key(tmp_path):
    class Holder(Walk):
        def state_dict(self):
            return {**super().state_dict(), "gen": np.random.default_rng(0)}

    run = Run(Holder(10), store=False, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"checkpoint\.job\.gen: numpy\.random\._generator\.Generator is not plain"):
        run.checkpoint()
    assert not run.checkpoint_path.exists()


# ============================================================================ 3. CIFAR pickles
def _py2_batch(n: int, labels: list[int]) -> bytes:
    """A CIFAR batch exactly as Python 2 / numpy 1 pickled the official files (protocol 2):
    str as SHORT_BINSTRING/BINSTRING, arrays through numpy.core.multiarray._reconstruct."""
    import struct

    def s(b: bytes) -> bytes:
        return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)

    data = bytes(np.arange(n * 3072, dtype=np.uint64).astype(np.uint8))
    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + b"K\x00\x85" + s(b"b") + b"\x87R"
             + b"(K\x01" + b"M" + struct.pack("<H", n) + b"M" + struct.pack("<H", 3072) + b"\x86"
             + b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R" + b"(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
             + b"\x89" + s(data) + b"tb")
    items = (s(b"batch_label") + s(b"training batch 1 of 5") + s(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels)
             + b"e" + s(b"data") + array + s(b"filenames") + b"](" + b"".join(s(f"{i}.png".encode()) for i in range(n)) + b"e")
    return b"\x80\x02}(" + items + b"u."


def test_official_python2_and_tool_written_batches_load(tmp_path):
    d = safe_pickle.loads(_py2_batch(4, [3, 1, 4, 1]))  # official layout
    assert d[b"labels"] == [3, 1, 4, 1] and d[b"data"].shape == (4, 3072) and d[b"data"].dtype == np.uint8
    assert d[b"data"][1, :3].tolist() == [0, 1, 2]  # 3072 % 256 == 0: row 1 restarts at 0
    assert d[b"filenames"][2] == b"2.png"
    # as shared/tools/cifar10-folder writes them (Python 3, protocol 2: bytes via _codecs.encode)
    tool = {b"batch_label": b"testing batch 1 of 1", b"labels": [0, 9], b"data": np.ones((2, 3072), np.uint8),
            b"filenames": [b"00001.jpg", b"00002.jpg"]}
    got = safe_pickle.loads(pickle.dumps(tool, protocol=2))
    assert got[b"labels"] == [0, 9] and got[b"filenames"][1] == b"00002.jpg" and got[b"data"].sum() == 2 * 3072
    for proto in (4, 5):  # Python 3's default protocols (5 rebuilds arrays with _frombuffer)
        assert safe_pickle.loads(pickle.dumps(tool, protocol=proto))[b"data"].sum() == 2 * 3072


def _cifar_folder(root: Path, labels: list) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"):
        with open(folder / name, "wb") as fh:
            pickle.dump({b"labels": labels, b"data": np.zeros((len(labels), 3072), np.uint8)}, fh, protocol=2)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, fh, protocol=2)
    return folder


def test_a_planted_reduce_in_a_cifar_folder_is_refused_and_never_runs(tmp_path):
    folder = _cifar_folder(tmp_path / "d", list(range(10)) * 2)
    marker = tmp_path / "PWNED"
    with open(folder / "data_batch_3", "wb") as fh:
        pickle.dump({b"labels": [1], b"data": Planted(marker)}, fh, protocol=2)
    with pytest.raises(ValueError, match=r"data_batch_3 .*refused to load"):
        data_mod.get("cifar10", root=tmp_path / "d")
    assert not marker.exists()
    with pytest.raises(ValueError, match="object"):
        safe_pickle.loads(pickle.dumps({b"data": np.array([None, 1])}, protocol=2))


def test_cifar_labels_must_be_integers(tmp_path):
    _cifar_folder(tmp_path / "d", [3.7] * 20)
    with pytest.raises(ValueError, match=r"labels: expected integers, got float64 values such as 3\.7"):
        cifar.read("cifar10", tmp_path / "d")


# ============================================================================ 4. run ids stay in the workspace
@pytest.mark.parametrize("bad", ["../../x", "/tmp/abs", "..", ".", "a/b", "", ".hidden", "a..b", "x" * 200, 3])
def test_run_ids_that_would_leave_the_checkpoint_folder_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="run_id: expected 1-128 letters"):
        Run(Walk(3), store=RunStore(tmp_path / "s.sqlite"), run_id=bad, checkpoint_dir=tmp_path / "ck")
    with pytest.raises(ValueError, match="run_id"):
        RunStore(tmp_path / "s.sqlite").create_run({}, run_id=bad)


def test_a_run_id_read_from_a_checkpoint_is_validated(tmp_path):
    root = tmp_path / "ws" / "checkpoints"
    path = root / "good" / "last.pt"
    ckpt.save(path, {"job_class": "test_runs:Walk", "config": {"steps": 5, "seed": 0}, "meta": {"kind": "walk"},
                     "job": Walk(5).state_dict() | {"rng": Walk(5).rng.bit_generator.state, "pos": 0.0},
                     "run_id": "../../escaped", "step": 0})
    with pytest.raises(ValueError, match="checkpoint .*run_id: expected 1-128 letters.*refused"):
        Run.resume(path, store=False)
    assert not (tmp_path / "escaped").exists() and not (root.parent.parent / "escaped").exists()


# ============================================================================ 5. checkpoint before finish
class FailingFinish(Walk):
    broken = True

    def finish(self):
        if FailingFinish.broken:
            raise RuntimeError("ranking crashed")
        return super().finish()


def test_a_failing_finish_keeps_the_trained_state(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    run = Run(FailingFinish(12, seed=5), store=store, checkpoint_every=0, checkpoint_dir=tmp_path / "ck")
    run.start()
    assert run.wait(30) == "failed"
    data = ckpt.load(run.checkpoint_path)  # the old code wrote its first checkpoint only after finish()
    assert data["step"] == 12
    FailingFinish.broken = False
    try:
        again = Run.resume(run.run_id, store=store)
        summary = again.start().result(timeout=30)
    finally:
        FailingFinish.broken = True
    ref = np.cumsum(np.random.default_rng(5).normal(size=12))[-1]
    assert summary["final"] == pytest.approx(ref) and store.run(run.run_id)["status"] == "finished"


# ============================================================================ 6. dead runs are "interrupted"
def _script(db: Path, ck: Path, body: str) -> str:
    return textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_runs import Walk
        from nasbench_lab.runs import Run, RunStore
        store = RunStore({str(db)!r})
        """) + textwrap.dedent(body).replace("CK", repr(str(ck)))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_runs_killed_mid_run_show_as_interrupted_with_their_checkpoint(tmp_path, capsys, sig):
    db = tmp_path / "s.sqlite"
    script = _script(db, tmp_path / "ck", """
        run = Run(Walk(100000, delay=0.002), store=store, flush_every_s=0.05, checkpoint_every=10, checkpoint_dir=CK)
        late = Run(Walk(100000, delay=0.002), store=store, checkpoint_every=10**6, checkpoint_dir=CK)
        run.start(); late.start()
        while not run.checkpoint_path.exists() or store.metrics(run.run_id).shape[0] < 25:
            time.sleep(0.02)
        print("ready", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert set(RunStore(db).runs()["status"]) == {"running"}  # alive: reported as it is
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        proc.kill()
    runs = RunStore(db).runs().set_index("name")
    assert set(runs["recorded_status"]) == {"running"}  # nothing could record an end...
    assert set(runs["status"]) == {"interrupted"}  # ...and readers see the owner is gone
    with_ckpt = runs[runs["checkpoint"].notna()]
    assert len(with_ckpt) == 1 and Path(with_ckpt["resume_from"].iloc[0]).is_file()
    assert runs[runs["checkpoint"].isna()]["resume_from"].isna().all()
    code, out, _ = cli(capsys, "runs", "--store", str(db))
    assert code == 0 and out.count("interrupted") >= 2 and "none (no checkpoint)" in out
    assert with_ckpt["resume_from"].iloc[0] in out
    # and it continues from that checkpoint
    resumed = Run.resume(with_ckpt["id"].iloc[0], store=RunStore(db))
    assert resumed.job.step_count % 10 == 0 and RunStore(db).run(resumed.run_id)["status"] == "paused"
    resumed.stop()


def test_liveness_of_runs_owned_elsewhere_follows_the_heartbeat():
    now = time.time()
    assert store_mod.liveness("running", 12, "other-host", now - 5, now - 5, now) == "running"
    assert store_mod.liveness("paused", 12, "other-host", now - store_mod.STALE_S - 1, now, now) == "interrupted"
    assert store_mod.liveness("running", None, None, None, now - 3600, now) == "interrupted"  # a pre-heartbeat row
    assert store_mod.liveness("finished", None, None, None, 0.0, now) == "finished"
    assert store_mod.liveness("running", os.getpid(), socket.gethostname(), now - 3600, 0.0, now) == "running"


def test_cli_run_stopped_by_sigterm_checkpoints_and_says_so(tmp_path):
    db = tmp_path / "s.sqlite"
    env = {**os.environ, "NASBENCH_LAB_HOME": str(tmp_path / "ws"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nasbench_lab.cli", "run", "--steps", "100000", "--batch-size", "4",
                             "--store", str(db)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            if db.exists():
                m = RunStore(db).runs()
                if len(m) and RunStore(db).metrics(m["id"].iloc[0]).shape[0] >= 3:
                    break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "resume with Run.resume(" in out
    rec = RunStore(db).runs().iloc[0]
    assert rec["status"] == "stopped" and Path(rec["resume_from"]).is_file()


# ============================================================================ 7. a quick build never replaces a fuller table
def test_groundtruth_limit_keeps_the_shipped_table(capsys):
    code, out, err = cli(capsys, "groundtruth", "--limit", "1", "--epochs", "0.05", "--seeds", "1", "--batch-size", "32")
    assert code == 0, err
    assert "not saved as the pooling/digits benchmark" in out and "1 of the 36 architectures" in out
    assert len(benchmarks.get("pooling", dataset="digits")) == 36
    code, out, err = cli(capsys, "show", "pooling", "[7,1,2]")
    assert code == 0 and "digits" in out, err
    assert not benchmarks.user_path("pooling", "digits").exists()


def test_groundtruth_records_the_budget_it_trained(tmp_path):
    bench = build_groundtruth("pooling", "digits", epochs=0.05, seeds=[0], limit=1, progress=False, batch_size=32,
                              overwrite=True)
    meta = json.loads(bench.path.with_suffix(".json").read_text())
    assert meta["epochs"] == 0.05 and bench.epochs == 0.05  # the old builder wrote max(1, round(0.05)) = 1
    assert benchmarks.Benchmark.load(bench.path).epochs == 0.05


# ============================================================================ 8. output paths before the work
def test_compare_samplers_checks_the_csv_path_before_training(capsys, monkeypatch):
    from nasbench_lab.training.samplers import compare

    def no_work(*a, **k):
        raise AssertionError("trained before checking --csv")

    monkeypatch.setattr(compare, "compare", no_work)
    code, _, err = cli(capsys, "compare-samplers", "--methods", "uniform", "--seeds", "0", "--steps", "2",
                       "--csv", "/nonexistent/x.csv")
    assert code == 2 and "--csv: the folder '/nonexistent'" in err and "does not exist" in err


def test_compare_samplers_prints_the_table_when_the_file_write_fails(capsys, monkeypatch, tmp_path):
    def broken(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    code, out, err = cli(capsys, "compare-samplers", "--methods", "uniform", "--seeds", "0", "--steps", "2",
                         "--batch-size", "8", "--val-batch-size", "8", "--rank-images", "8",
                         "--csv", str(tmp_path / "x.csv"))
    assert code == 1 and "kendall_tau_mean" in out and "uniform" in out
    assert "could not write" in err and "No space left" in err


# ============================================================================ 9. no bad value silently replaced
@pytest.mark.parametrize("argv, match", [
    (("run", "--lr", "0"), "argument --lr: expected a finite positive number, got '0'"),
    (("run", "--batch-size", "0"), "argument --batch-size: expected a positive integer, got '0'"),
    (("run", "--rank-every", "-1"), "argument --rank-every: expected an integer >= 0"),
    (("run", "--lr", "nan"), "argument --lr"),
    (("darts", "--channels", "0"), "argument --channels: expected a positive integer"),
    (("show", "pooling", "[4,3,3]", "--neighbours", "-1"), "argument --neighbours"),
    (("runs", "--limit", "-1"), "argument --limit: expected a positive integer"),
    (("groundtruth", "--batch-size", "0"), "argument --batch-size"),
    (("search", "--budget", "0"), "argument --budget"),
])
def test_bad_flag_values_are_errors_naming_the_flag(capsys, argv, match):
    code, _, err = cli(capsys, *argv)
    assert code == 2 and match in err


@pytest.mark.parametrize("make, match", [
    (lambda: Trainer(**{**TINY, "lr": float("nan")}), "lr: expected a finite number"),
    (lambda: Trainer(**{**TINY, "lr": float("inf")}), "lr: expected a finite number"),
    (lambda: Trainer(**{**TINY, "lr": 0}), "lr: expected a finite number > 0"),
    (lambda: Trainer(**{**TINY, "steps": True}), "steps: expected an integer, got True"),
    (lambda: Trainer(**{**TINY, "amp": "bogus"}), "amp: expected one of 'auto', 'bf16', 'off', got 'bogus'"),
    (lambda: Trainer(**{**TINY, "rank_images": -5}), "rank_images: expected a positive integer or None"),
    (lambda: Trainer(**{**TINY, "recalibration_batches": -1}), "recalibration_batches: expected a positive integer"),
    (lambda: Trainer(**{**TINY, "rank_every": -1}), "rank_every: expected an integer >= 0"),
    (lambda: Trainer(**{**TINY, "method": "mixture", "method_options": {"models": 2.5}}),
     "method_options: models: expected an integer, got 2.5"),
    (lambda: spaces.get("pooling").parse([4.7, 3, 3]), "pooling: gene 0 is 4.7; genes are integers"),
    (lambda: spaces.get("pooling").parse([True, 3, 6]), "gene 0 is True"),
])
def test_bad_values_are_errors_never_replaced(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_zero_the_user_typed_reaches_the_config(capsys):
    """The old `if args.lr:` dropped --lr 0 and trained with 0.05; now any given value is passed on
    (argparse refuses 0 already; the config refuses it on the Python side)."""
    code, out, err = cli(capsys, "run", "--steps", "2", "--batch-size", "4", "--rank-images", "8", "--lr", "0.01",
                         "--rank-every", "0")
    assert code == 0, err
    rec = RunStore().runs().iloc[0]
    cfg = json.loads(rec["config"])
    assert cfg["lr"] == 0.01 and cfg["batch_size"] == 4 and cfg["rank_every"] == 0


# ============================================================================ 10. clear errors, naming the input
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda(capsys):
    code, _, err = cli(capsys, "run", "--steps", "2", "--device", "cuda")
    assert code == 2 and "device: 'cuda' was asked for, but CUDA is not available" in err


@pytest.mark.parametrize("argv, match", [
    (("run", "--method", "darts", "--space", "nb201", "--steps", "2", "--options", '{"arch_lr": "fast"}'),
     "arch_lr: expected a finite number or None, got 'fast'"),
    (("run", "--method", "density", "--steps", "2", "--options", '{"temperature": null}'),
     "method_options: temperature: expected a finite number, got None"),
    (("run", "--method", "boltzmann", "--steps", "2", "--options", '{"beta": "hot"}'),
     "method_options: beta: expected a finite number, got 'hot' (e.g. beta=0.95)"),
    (("run", "--steps", "2", "--options", "{warmup: 1}"), "--options: not valid JSON"),
    (("run", "--steps", "2", "--options", "[1]"), "--options: expected a JSON object"),
    (("run", "--steps", "2", "--seed", "-1"), "--seed: expected an integer in 0.."),
    (("compare-samplers", "--seeds", "", "--steps", "2"), "--seeds: expected at least one value"),
    (("show", "nb201", "|x|"), "nb201: cannot parse"),
])
def test_cli_errors_name_the_input(capsys, argv, match):
    code, _, err = cli(capsys, *argv)
    assert code == 2 and match in err, err


def test_store_paths_that_are_not_stores(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        RunStore(tmp_path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"hello, not a database" * 10)
    with pytest.raises(ValueError, match="is not an SQLite database"):
        RunStore(junk)
    foreign = tmp_path / "foreign.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE runs (x INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(ValueError, match="not a nasbench_lab run store"):
        RunStore(foreign)


def test_an_old_store_is_migrated_and_keeps_its_runs(tmp_path):
    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.executescript(store_mod._SCHEMA.replace(",\n    pid INTEGER,\n    host TEXT,\n    heartbeat REAL,\n    owner TEXT", ""))
    con.execute("INSERT INTO runs (id, name, kind, config, status, created, updated, step) VALUES "
                "('old1', 'n', 'supernet', '{}', 'finished', 1.0, 2.0, 7)")
    con.commit()
    con.close()
    rec = RunStore(db).run("old1")
    assert rec["status"] == "finished" and rec["step"] == 7 and "heartbeat" in rec


@pytest.mark.parametrize("make, match", [
    (lambda: Trainer(**{**TINY, "lr": "0.1"}), "lr: expected a finite number, got '0.1'"),
    (lambda: spaces.get("pooling").parse(None), "pooling: expected a layout of 3 layer counts such as \\[4,3,3\\], 9 per-layer pooling decisions or its string, got None"),
    (lambda: spaces.get(["pooling"]), r"unknown search space \['pooling'\]; valid names"),
    (lambda: Run.resume("no-such-id", store=RunStore()), "'no-such-id' is neither a checkpoint file nor a run id"),
    (lambda: Trainer(**{**TINY, "bogus": 1}), "Trainer: unknown option"),
])
def test_raw_tracebacks_became_clear_errors(make, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        make()


def test_every_job_state_of_the_package_round_trips_through_a_data_only_checkpoint(tmp_path):
    """Samplers, strategies and the differentiable trainer keep plain state (the rule
    ``weights_only=True`` enforces); the names come from the registries, so a method added later
    is covered too."""
    from nasbench_lab.differentiable import build as build_diff
    from nasbench_lab.search import strategies
    from nasbench_lab.training import samplers

    pool = spaces.get("pooling")
    for name in samplers.names():
        s = samplers.get(name, pool, seed=1)
        for _ in range(3):
            a = s.sample()
            s.observe(a, 0.5)
        path = ckpt.save(tmp_path / f"{name}.pt", {"state": s.state_dict()})
        t = samplers.get(name, pool, seed=2)
        t.load_state_dict(ckpt.load(path)["state"])
        assert [str(t.sample()) for _ in range(3)] == [str(s.sample()) for _ in range(3)], name
    for name in strategies.names():
        opts = {"fidelities": [1.0, 3.0, 9.0]} if strategies.strategy_class(name).needs_fidelity else {}
        s = strategies.get(name, pool, seed=1, **opts)
        for _ in range(3):
            a = s.ask()
            s.tell(a, float(sum(a.genes)))
        path = ckpt.save(tmp_path / f"st-{name}.pt", {"state": s.state_dict()})
        t = strategies.get(name, pool, seed=2, **opts)
        t.load_state_dict(ckpt.load(path)["state"])
        assert str(t.ask()) == str(s.ask()), name
    job = build_diff("gdas", space="nb201", steps=2, batch_size=4, channels=2, cells=1, hessian_every=0)
    job.step()
    run = Run(job, store=False, checkpoint_dir=tmp_path / "ck")
    back = Run.resume(run.checkpoint(), store=False)
    assert back.job.step_count == 1 and set(back.job.alphas) == set(job.alphas)
    for g in job.alphas:
        assert torch.equal(back.job.alphas[g].detach(), job.alphas[g].detach())


# ============================================================================ 11. bounded work on files from outside (issue 23)
def shared_list(depth: int, width: int = 2) -> list:
    """``x = [x] * width``, ``depth`` times: a few bytes per level pickled (the memo), width**depth
    items to anything that walks it as a tree."""
    x: list = []
    for _ in range(depth):
        x = [x] * width
    return x


def tuple_key_pickle(depth: int, head: bytes = b"") -> bytes:
    """A protocol-2 pickle of a dict whose last key is ``t = (t, t)`` nested ``depth`` times, written
    by hand (building it in Python would hash the key: 2**depth tuples). ``head``: SETITEM items
    placed first."""
    out = bytearray(b"\x80\x02}q\x00" + head + b"K\xff)q\x01s")  # d[255] = (), memo 1
    for i in range(depth):  # d[i] = (t, t) of the previous one, memo i + 2 (torch's unpickler has no POP)
        out += b"K" + bytes([i]) + b"h" + bytes([i + 1]) + b"h" + bytes([i + 1]) + b"\x86q" + bytes([i + 2]) + b"s"
    return bytes(out + b"h" + bytes([depth + 1]) + b"K\x01s.")  # d[t] = 1


def torch_zip(pickled: bytes) -> bytes:
    """A torch zip around a hand-written ``data.pkl``."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickled)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def signed(body: bytes, magic: bytes = ckpt.MAGIC) -> bytes:
    """``body`` behind the integrity header with a correct digest (anyone can compute one)."""
    import hashlib

    return magic + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def torch_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _a_batch_with(extra: object, protocol: int = 2) -> bytes:
    return pickle.dumps({b"labels": [1], b"data": np.zeros((1, 3072), np.uint8), b"x": extra}, protocol=protocol)


@pytest.mark.timeout(60)  # the old checks walked 2**40 items: hours
def test_a_shared_reference_bomb_in_a_cifar_batch_is_refused_at_once(tmp_path):
    raw = _a_batch_with(shared_list(40))
    assert len(raw) < 4000  # 3.6 KB
    with pytest.raises(ValueError, match=r"nested more than 32 containers deep"):
        safe_pickle.loads(raw)
    with pytest.raises(ValueError, match=r"holds 11,111,111 items counted as a tree.*at most 10,000,000"):
        safe_pickle.loads(_a_batch_with(shared_list(9, 10)))  # shallow and wide: the item bound
    folder = _cifar_folder(tmp_path / "d", list(range(10)) * 2)
    (folder / "data_batch_2").write_bytes(raw)
    with pytest.raises(ValueError, match=r"data_batch_2 is not a readable CIFAR pickle.*nested more than 32"):
        data_mod.get("cifar10", root=tmp_path / "d")
    with pytest.raises(ValueError, match=r"a dict key of 2,147,483,647 items"):  # refused before pickle hashes it
        safe_pickle.loads(tuple_key_pickle(30))
    with pytest.raises(ValueError, match=r"tuples nested more than 32 deep"):
        safe_pickle.loads(tuple_key_pickle(40))
    loop = b"\x80\x02]q\x00h\x00a."  # x = []; x.append(x)
    with pytest.raises(ValueError, match="contains itself"):
        safe_pickle.loads(loop)


@pytest.mark.timeout(60)  # the old decoder recursed through 2**40 shared lists: hours
def test_a_shared_reference_bomb_in_a_signed_checkpoint_is_refused_at_once(tmp_path):
    path = tmp_path / "r1" / "last.pt"
    path.parent.mkdir()
    raw = signed(torch_bytes({"format": ckpt.FORMAT, "run_id": "r1", "job_class": "test_runs:Walk", "config": {},
                              "job": shared_list(40), "rng": ckpt.rng_state(), "meta": {}}))
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=rf"checkpoint {path}.*items counted as a tree.*at most 50,000,000"):
        ckpt.load(path)
    with pytest.raises(ValueError, match=rf"checkpoint {path}"):
        Run.resume(path, store=False)
    path.write_bytes(signed(torch_zip(tuple_key_pickle(40, b"X\x06\x00\x00\x00formatX\x19\x00\x00\x00"
                                                         b"nasbench_lab.checkpoint/2s"))))
    with pytest.raises(ValueError, match=r"a dict key of 2,199,023,255,551 items.*refused"):
        ckpt.load(path)  # torch's unpickler would hash the key: 2**40 tuples
    # what a shared structure legitimately holds still loads, shared once, decoded once
    row = [1.0, 2.0]
    ok = ckpt.save(tmp_path / "ok.pt", {"rows": [row] * 1000})
    back = ckpt.load(ok)["rows"]
    assert len(back) == 1000 and back[0] is back[999] and back[0] == [1.0, 2.0]


def test_nesting_beyond_the_depth_limits_is_a_clear_error(tmp_path, capsys):
    deep: list = []
    for _ in range(400):
        deep = [deep]
    path = tmp_path / "deep.pt"
    path.write_bytes(signed(torch_bytes({"format": ckpt.FORMAT, "job": deep, "meta": {}})))
    with pytest.raises(ValueError, match=rf"checkpoint {path}.*nested more than 64 containers deep"):
        ckpt.load(path)  # the old decoder: RecursionError
    with pytest.raises(ValueError, match=r"checkpoint\.job(\[0\])+: nested more than 64 containers deep"):
        ckpt.save(tmp_path / "deep2.pt", {"job": deep})  # refused when written, too
    text = "[" * 100_000 + "]" * 100_000
    code, _, err = cli(capsys, "run", "--steps", "2", "--options", '{"a": ' + text + "}")
    assert code == 2 and "--options: JSON nested more than 100 levels deep" in err, err  # was a RecursionError
    from nasbench_lab import validation as V

    assert V.json_loads("x", "[" * 100 + "]" * 100) and V.json_loads("x", '"[[[["') == "[[[["  # brackets in strings
    with pytest.raises(ValueError, match="4300 digits"):
        V.json_object("--options", '{"a": ' + "9" * 5000 + "}", "{}")  # a raw ValueError without the flag before


def test_special_and_oversized_files_are_refused_before_reading(tmp_path, monkeypatch):
    good = Run(Walk(10, seed=1), store=False, checkpoint_dir=tmp_path / "ck")
    good.step(2)
    path = good.checkpoint()
    good.stop()
    size = path.stat().st_size
    monkeypatch.setattr(ckpt, "MAX_CHECKPOINT_BYTES", size - 1)
    with pytest.raises(ValueError, match=rf"{path} is {size:,} bytes; files of at most {size - 1:,} bytes are read "
                                         r"\(nasbench_lab\.runs\.checkpoint\.MAX_CHECKPOINT_BYTES\)"):
        ckpt.load(path)
    monkeypatch.undo()
    sparse = tmp_path / "sparse.pt"
    with open(sparse, "wb") as fh:
        fh.truncate(8 << 30)  # 8 GB, no disk used: it was read whole before any check
    with pytest.raises(ValueError, match=r"is 8,589,934,592 bytes; files of at most 2,147,483,648"):
        ckpt.load(sparse)
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/zero")):
        with pytest.raises(ValueError, match=rf"checkpoint {target} is not a regular file \(it is a "):
            ckpt.load(target)  # was "does not exist"
        with pytest.raises(ValueError, match="not a regular file"):
            Run.resume(target, store=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ckpt.load(tmp_path / "nope.pt")
    assert ckpt.load(path)["step"] == 2


def test_unsigned_and_newer_checkpoints_say_what_they_are(tmp_path):
    run = Run(Walk(10, seed=1), store=False, checkpoint_dir=tmp_path / "ck")
    run.step(3)
    path = run.checkpoint()
    run.stop()
    raw = path.read_bytes()
    body = raw[len(ckpt.MAGIC) + 65:]
    stripped = tmp_path / "stripped" / "last.pt"
    stripped.parent.mkdir()
    stripped.write_bytes(body)  # the header cut off: it loaded as the digest-less format 1
    with pytest.raises(ValueError, match=r"is unsigned.*refused.*checkpoint\.load\(path, allow_unsigned=True\)"):
        ckpt.load(stripped)
    with pytest.raises(ValueError, match="allow_unsigned=True"):
        Run.resume(stripped, store=False)
    assert ckpt.load(stripped, allow_unsigned=True)["step"] == 3
    assert Run.resume(stripped, store=False, allow_unsigned=True).job.step_count == 3
    newer = tmp_path / "v3.pt"
    newer.write_bytes(signed(body, b"NASBENCH-LAB-CKPT/3\n"))
    with pytest.raises(ValueError, match=r"format version 3, newer than this code reads \(version 2; version 1 "
                                         r"unsigned with allow_unsigned=True\): update nasbench_lab"):
        ckpt.load(newer)  # was "not a nasbench_lab checkpoint"
    tagged = tmp_path / "tag3.pt"
    tagged.write_bytes(signed(torch_bytes({"format": "nasbench_lab.checkpoint/3", "meta": {}})))
    with pytest.raises(ValueError, match="format version 3, newer than this code reads"):
        ckpt.load(tagged)


@pytest.mark.parametrize("step, job_step", [(-1, -1), (11, 11), (3, -2), (3, 99)])
def test_a_checkpoint_step_outside_the_run_is_refused(tmp_path, step, job_step):
    run = Run(Walk(10, seed=1), store=False, checkpoint_dir=tmp_path / "ck")
    run.step(3)
    path = run.checkpoint()
    run.stop()
    data = ckpt.load(path)
    data["step"], data["job"]["step_count"] = step, job_step
    del data["format"], data["rng"]
    rng = ckpt.rng_state()
    ckpt.save(path, {**data, "rng": rng})
    bad = "step" if not 0 <= step <= 10 else "job.step_count"
    with pytest.raises(ValueError, match=rf"checkpoint {path}: {bad} is -?\d+; a run of 10 steps has a step in "
                                         r"0\.\.10; the file is refused"):
        Run.resume(path, store=False)


def test_echoed_input_is_shortened_in_messages():
    from nasbench_lab import validation as V
    from nasbench_lab.spaces.budget import Budget

    long = "x" * 100_000
    cases = [lambda: V.json_object("--options", "{" + long, "{}"), lambda: V.positive_int("steps", long),
             lambda: V.identifier("run_id", long), lambda: spaces.get(long), lambda: Budget.parse(long),
             lambda: spaces.get("pooling").parse(long), lambda: spaces.get("nb201").parse([long] * 6),
             lambda: V.choice("amp", long, ("auto", "off")), lambda: spaces.get("mobilenet").parse(long[:3000])]
    for make in cases:
        with pytest.raises(ValueError) as info:
            make()
        assert len(str(info.value)) < 600 and "xxxxx...xxxxx" in str(info.value), str(info.value)[:300]
    assert V.shorten(long) == f"'{'x' * 60}...{'x' * 12}' (100000 characters)"
    assert V.shorten(shared_list(50)).startswith("[[[[...]")  # bounded: never walks the 2**50 items


@pytest.mark.timeout(60)  # the old pattern backtracked: more than 30 s for 120 KB
def test_pooling_text_is_parsed_in_linear_time():
    sp = spaces.get("pooling")
    with pytest.raises(ValueError, match=r"architecture text of 120,003 characters.*at most 4000"):
        sp.parse("[1" + " " * 120_000 + "x")
    with pytest.raises(ValueError, match=r"pooling: cannot parse '\[1 .*\(3003 characters\)"):
        sp.parse("[1" + " " * 3000 + "x")  # under the length bound: one pass, no backtracking
    assert sp.parse(" [ 4 , 3,3 , ] ") == sp.parse("[4,3,3]")
    for bad in ("[4 3,3]", "[]", "[,]", "[4,,3,3]", "[4,3,3", "4,3,3]", "[-4,3,3]"):
        with pytest.raises(ValueError, match="expected a bracketed list"):
            sp.parse(bad)


def test_a_budget_the_space_cannot_meet_is_refused_with_the_limit():
    from nasbench_lab.spaces.budget import Budget, BudgetedSpace, BudgetError

    with pytest.raises(BudgetError, match=r"no architecture of pooling fits"):
        Budget.parse("flops<=1").bind("pooling")  # exact bounds: up front
    with pytest.raises(ValueError, match=r"budget: a text of 10,014 characters.*at most 200"):
        Budget.parse("flops:[1," + " " * 10_000 + "2]*3M")
    # DARTS has no cost bounds (each cost builds a network, 0.5 s): the search is bounded in time
    # (it was max_tries=100,000 draws: 14 hours) and says the range it met
    narrow = BudgetedSpace("darts", "params:[1.5M,1.50001M]", max_seconds=1.0)
    with pytest.raises(BudgetError, match=r"only 0 of 1 architectures of darts found inside in \d+ draws and "
                                          r"max_seconds=1 s; the params of the draws ranged over \[\d"):
        narrow.sample(0)


def test_oversize_batches_and_channel_counts_are_refused_up_front():
    from nasbench_lab.differentiable import build as build_diff

    with pytest.raises(ValueError, match=r"batch_size: 100,000 is larger than the train split of digits \(718 images\); "
                                         r"expected at most 718"):
        Trainer(**{**TINY, "batch_size": 100_000})  # it was cut to the whole split without a word
    with pytest.raises(ValueError, match=r"val_batch_size: 5,000 is larger than the val split of digits \(719 images\)"):
        Trainer(**{**TINY, "val_batch_size": 5_000})
    with pytest.raises(ValueError, match=r"batch_size: 1,000 is larger than the train split"):
        build_diff("darts", space="nb201", steps=2, batch_size=1_000, channels=2, cells=1)
    with pytest.raises(ValueError, match=r"channels: 10000 needs at least [\d,]+\.\d GiB \(weights, gradients.*\); "
                                         r"cpu has [\d,.]+ GiB in all \(e\.g\. channels=16\)"):
        build_diff("darts", space="nb201", steps=2, batch_size=4, channels=10_000, device="cpu")  # 2.6 TB of weights
