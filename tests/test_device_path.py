"""The CUDA data path (uint8 on the device, per-batch normalisation), bf16 autocast, the one host
sync per step, compile plumbing and the OpenMP team release: all checked on CPU."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from nasbench_lab import data as data_mod
from nasbench_lab.differentiable.trainer import DifferentiableTrainer
from nasbench_lab.runs.openmp import release_idle_team
from nasbench_lab.training.trainer import Trainer, data_storage_for
from tests.test_data import write_cifar10


@pytest.fixture()
def tiny_cifar(tmp_path):
    write_cifar10(tmp_path, per_batch=20)
    return data_mod.get("cifar10", root=tmp_path, seed=0)


def test_uint8_storage_gives_the_float32_batches_bit_for_bit(tiny_cifar):
    assert tiny_cifar.pixels == "uint8"
    u8 = tiny_cifar.to("cpu", storage="uint8")
    assert u8.storage == "uint8" and u8.train_x.raw.dtype == torch.uint8
    idx = torch.tensor([3, 0, 7, 7, 11])
    assert torch.equal(u8.train_x[idx], tiny_cifar.train_x[idx])
    assert torch.equal(u8.test_x[:5], tiny_cifar.test_x[:5]) and u8.val_x.shape == tiny_cifar.val_x.shape
    assert torch.equal(u8.to("cpu", storage="float32").val_x, tiny_cifar.val_x)


def test_uint8_storage_is_refused_for_float_images():
    digits = data_mod.get("digits")
    assert digits.pixels == "float"
    with pytest.raises(ValueError, match="storage='uint8'"):
        digits.to("cpu", storage="uint8")
    with pytest.raises(ValueError, match="storage must be one of"):
        digits.to("cpu", storage="fp8")
    assert data_storage_for(digits, torch.device("cuda")) == "float32"


def test_auto_storage_is_uint8_on_cuda_only(tiny_cifar):
    assert data_storage_for(tiny_cifar, torch.device("cuda")) == "uint8"
    assert data_storage_for(tiny_cifar, torch.device("cpu")) == "float32"


def test_trainer_on_uint8_storage_follows_the_float32_trajectory(tiny_cifar):
    kw = dict(space="pooling", steps=3, batch_size=8, val_batch_size=8, rank_at_end=False, device="cpu")
    a = Trainer(data=tiny_cifar, data_storage="float32", **kw)
    b = Trainer(data=tiny_cifar, data_storage="uint8", **kw)
    assert b.data.storage == "uint8"
    for _ in range(3):
        ma, mb = a.step(), b.step()
        assert ma == mb  # same arch, loss, reward, lr: the same numbers on both paths


def test_step_metrics_are_the_reward_and_loss_of_the_step():
    t = Trainer(space="pooling", steps=2, batch_size=8, val_batch_size=16, rank_at_end=False, device="cpu")
    m = t.step()
    assert isinstance(m["loss"], float) and isinstance(m["reward"], float)
    assert m["reward"] * 16 == pytest.approx(round(m["reward"] * 16))  # a share of 16 images
    assert np.isfinite(m["loss"]) and m["loss"] > 0


def test_bf16_autocast_on_cpu_trains_close_to_float32():
    kw = dict(space="pooling", steps=4, batch_size=16, val_batch_size=16, rank_at_end=False, device="cpu")
    a, b = Trainer(amp="off", **kw), Trainer(amp="bf16", **kw)
    la = [a.step()["loss"] for _ in range(4)]
    lb = [b.step()["loss"] for _ in range(4)]
    assert la != lb  # bf16 really ran
    assert np.allclose(la, lb, rtol=0.1), (la, lb)
    with pytest.raises(ValueError, match="amp"):
        Trainer(amp="fp16", **kw)


def test_compile_flag_compiles_the_architecture_independent_chains():
    t = Trainer(space="pooling", steps=1, rank_at_end=False, device="cpu", compile=True)
    seqs = [m for m in t.net.modules() if isinstance(m, torch.nn.Sequential) and m._compiled_call_impl is not None]
    assert t.compiled == len(seqs) > 0
    assert Trainer(space="pooling", steps=1, rank_at_end=False, device="cpu").compiled == 0
    assert all(not k.startswith("_orig_mod") for k in t.net.state_dict())  # checkpoints unchanged


def test_release_idle_team_after_torch_and_inside_a_thread():
    torch.ones(256, 256) @ torch.ones(256, 256)  # this thread has an OpenMP team now
    assert release_idle_team() in (True, False)  # False only where libgomp is not the runtime
    out = []
    th = threading.Thread(target=lambda: out.append(float((torch.ones(64, 64) @ torch.ones(64, 64)).sum())))
    th.start()
    th.join()
    assert out == [64.0 ** 3]  # torch still works in both threads after the release
    assert float((torch.ones(8, 8) @ torch.ones(8, 8)).sum()) == 512.0


_RELEASE_SCRIPT = r"""
import os, sys, torch
import sklearn.metrics  # loads scikit-learn's own libgomp beside torch's, as every notebook does
from nasbench_lab.runs.openmp import _pause_fns, release_idle_team
gomps = sorted({l.split()[-1] for l in open("/proc/self/maps") if "libgomp" in l and "/" in l})
torch.set_num_threads(2)
torch.relu(torch.randn(400_000))  # the main thread's OpenMP team: one worker thread
n_team = len(os.listdir("/proc/self/task"))
ok = release_idle_team()
n_released = len(os.listdir("/proc/self/task"))
print(len(gomps), len(_pause_fns()), ok, n_team, n_released)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc/self/task (Linux)")
def test_release_idle_team_ends_torchs_pool_with_scikit_learns_libgomp_loaded():
    """The release must reach torch's libgomp, whichever other copies are loaded: the first
    version paused only the first path in sorted order, scikit-learn's, so torch's idle team
    stayed and the Run thread kept libgomp's throttled spin (1.3x slower steps, 2 cores)."""
    out = subprocess.run([sys.executable, "-c", _RELEASE_SCRIPT], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    n_gomp, n_fns, ok, n_team, n_released = int(out[0]), int(out[1]), out[2], int(out[3]), int(out[4])
    if n_fns == 0:
        pytest.skip("libgomp is not this torch's OpenMP runtime")
    assert n_fns == n_gomp >= 2  # torch's and scikit-learn's copies, both reached
    assert ok == "True"
    assert n_released == n_team - 1  # the main thread's one idle worker is gone


def test_channels_last_is_a_layout_only_same_step_and_estimates_as_nchw():
    """The Trainer's channels_last default (faster on CPU and CUDA) changes the memory layout of
    the supernet and its batches, not the arithmetic: from the same initialisation the first step
    has the same loss, and on the same weights every architecture gets the same estimate. (Later
    steps drift apart as any rounding change makes them: two NCHW runs with 1 and 2 threads differ
    by 0.5 % in loss at step 3 on NB-201.)"""
    jobs = {cl: Trainer(space="nb201", dataset="digits", method="uniform", steps=4, batch_size=16, seed=3,
                        channels_last=cl, rank_at_end=False) for cl in (True, False)}
    first = {cl: tr.step()["loss"] for cl, tr in jobs.items()}
    assert first[True] == pytest.approx(first[False], rel=1e-5)
    for cl, tr in jobs.items():
        conv = next(m for m in tr.net.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == cl
        assert tr._next_batch("train")[0].is_contiguous(memory_format=torch.channels_last) == cl
    for _ in range(3):
        jobs[True].step()
    jobs[False].net.load_state_dict(jobs[True].net.state_dict())
    for a in jobs[True].sample_archs(4, seed=0):
        (acc_cl, loss_cl), (acc, loss) = (jobs[cl].evaluate_metrics(a) for cl in (True, False))
        assert abs(acc_cl - acc) <= 100 / jobs[True].data.val_x.shape[0] + 1e-9  # at most one near-tie flips
        assert loss_cl == pytest.approx(loss, rel=1e-4)


def test_evaluation_chunk_size_does_not_change_the_numbers():
    """Evaluation runs in chunks of ``eval_chunk`` images (64 on a CPU, where it is fastest); in
    eval mode the chunking cannot change accuracy or loss beyond rounding."""
    tr = Trainer(space="pooling", dataset="digits", method="uniform", steps=2, batch_size=16, seed=0, rank_at_end=False)
    tr.step()
    arch = tr.sample_archs(1, seed=1)[0]
    assert tr.eval_chunk == 64
    small = tr.evaluate_metrics(arch, recalibrate=False)
    tr.eval_chunk = 10_000  # the whole split in one pass
    whole = tr.evaluate_metrics(arch, recalibrate=False)
    assert small[0] == whole[0] and small[1] == pytest.approx(whole[1], rel=1e-5)


@pytest.mark.parametrize("method", ["darts", "gdas"])
def test_differentiable_trainer_channels_last_is_a_layout_only(method):
    """DifferentiableConfig.channels_last (default, 2.3x a DARTS step on NB-201 here) changes the
    layout of the relaxed network and its batches, not the arithmetic: from the same
    initialisation the first step's losses and alpha updates agree with NCHW."""
    jobs = {cl: DifferentiableTrainer(space="nb201", method=method, steps=3, batch_size=16, channels=8, cells=1,
                                      seed=5, hessian_every=0, channels_last=cl) for cl in (True, False)}
    first = {cl: tr.step() for cl, tr in jobs.items()}
    for key in ("loss", "val_loss"):
        assert first[True][key] == pytest.approx(first[False][key], rel=1e-5)
    for g in jobs[True].groups:
        torch.testing.assert_close(jobs[True].alphas[g].detach(), jobs[False].alphas[g].detach(), rtol=1e-4, atol=1e-6)
    for cl, tr in jobs.items():
        conv = next(m for m in tr.net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == cl
    assert DifferentiableTrainer.from_config(jobs[False].config()).cfg.channels_last is False  # stored with the run
