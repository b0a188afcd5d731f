"""The CUDA data path (uint8 on the device, per-batch normalisation), bf16 autocast, the one host
sync per step, compile plumbing and the OpenMP team release: all checked on CPU."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from nasbench_lab import data as data_mod
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
