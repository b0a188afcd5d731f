"""Datasets: digits, CIFAR readers on tiny fake folders in the real pickle format, augmentation."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from nasbench_lab import data
from nasbench_lab.data import bundle as bundle_mod
from nasbench_lab.data import cifar
from nasbench_lab.data.augment import Augment


# --------------------------------------------------------------------------- fake CIFAR folders
def _batch(rng: np.random.Generator, n: int, num_classes: int) -> tuple[np.ndarray, list[int]]:
    labels = [i % num_classes for i in range(n)]  # every class present at least twice per file
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), labels


def write_cifar10(root: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """cifar-10-batches-py exactly as distributed (bytes keys, as pickled by Python 2)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x, y = _batch(rng, per_batch, 10)
        with open(folder / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"labels": y, b"data": x,
                         b"filenames": [f"{i}.png".encode() for i in range(per_batch)]}, fh)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"num_cases_per_batch": per_batch, b"label_names": names, b"num_vis": 3072}, fh)
    return folder


def write_cifar100(root: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """cifar-100-python with str keys (what a Python 3 writer produces): both must load."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in (("train", n_train), ("test", n_test)):
        x, y = _batch(rng, n, 100)
        with open(folder / name, "wb") as fh:
            pickle.dump({"filenames": [], "fine_labels": y, "coarse_labels": [v // 5 for v in y],
                         "data": x}, fh)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": [f"class{i}" for i in range(100)],
                     "coarse_label_names": [f"super{i}" for i in range(20)]}, fh)
    return folder


def test_names():
    assert data.names() == ["digits", "cifar10", "cifar100", "scenes", "segfolder"]
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*digits, cifar10, cifar100"):
        data.get("mnist")


# --------------------------------------------------------------------------- digits
def test_digits_shapes_and_splits():
    b = data.get("digits")
    assert b.name == "digits" and b.num_classes == 10 and b.classes == [str(i) for i in range(10)]
    assert b.train_x.shape[1:] == (3, 32, 32) and b.input_shape == (3, 32, 32)
    assert b.train_x.dtype == torch.float32 and b.train_y.dtype == torch.int64
    # 1797 images: fixed 80/20 train/test (1437/360), training half split 718/719
    assert (len(b.train_y), len(b.val_y), len(b.test_y)) == (718, 719, 360)
    assert len(b.train_x) == len(b.train_y) and len(b.test_x) == len(b.test_y)
    assert set(b.train_index).isdisjoint(b.val_index)
    assert sorted([*b.train_index, *b.val_index]) == list(range(1437))
    # grey replicated to 3 identical channels; normalised with train statistics
    torch.testing.assert_close(b.train_x[:, 0], b.train_x[:, 2])
    torch.testing.assert_close(b.train_x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(b.train_x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    assert len(b.mean) == len(b.std) == 3 and 0 < b.mean[0] < 1
    # stratified: every class in each split
    for y in (b.train_y, b.val_y, b.test_y):
        assert set(y.tolist()) == set(range(10))
    assert b.augment.pad == 2 and not b.augment.flip


def test_digits_determinism_and_seed():
    a, b, c = data.get("digits", seed=0), data.get("digits", seed=0), data.get("digits", seed=1)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)
    assert not np.array_equal(a.train_index, c.train_index)
    # the test images do not depend on the seed (only their normalisation, via the train split)
    assert torch.equal(a.test_y, c.test_y)

    def raw(bundle):
        return bundle.test_x * torch.tensor(bundle.std).view(3, 1, 1) + torch.tensor(bundle.mean).view(3, 1, 1)

    torch.testing.assert_close(raw(a), raw(c), atol=1e-5, rtol=0)


def test_bundle_to_summary_and_batches():
    b = data.get("digits")
    assert b.to("cpu") is b
    s = b.summary()
    assert s["train"] == 718 and s["num_classes"] == 10 and s["device"] == "cpu" and s["dtype"] == "float32"
    g = torch.Generator().manual_seed(0)
    batches = list(b.batches("val", batch_size=256, generator=g))
    assert [len(y) for _, y in batches] == [256, 256, 207]
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == sorted(b.val_y.tolist())
    assert len(list(b.batches("train", 256, drop_last=True))) == 2
    with pytest.raises(ValueError, match="unknown split"):
        b.split("holdout")


# --------------------------------------------------------------------------- CIFAR readers
def test_cifar10_reader(tmp_path):
    write_cifar10(tmp_path, per_batch=20)
    b = data.get("cifar10", root=tmp_path, seed=0)
    assert b.num_classes == 10 and b.classes[0] == "airplane" and b.classes[-1] == "truck"
    assert (len(b.train_y), len(b.val_y), len(b.test_y)) == (50, 50, 20)
    assert b.train_x.shape == (50, 3, 32, 32) and b.train_x.dtype == torch.float32
    assert b.augment.pad == 4 and b.augment.flip
    assert set(b.train_index).isdisjoint(b.val_index)
    # the rows are CHW: channel 0 of image k is the first 1024 bytes of row k
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")[b"data"]
    k = int(np.flatnonzero(b.train_index < 20)[0])
    row = raw[b.train_index[k]]
    mean, std = torch.tensor(b.mean), torch.tensor(b.std)
    pixels = b.train_x[k] * std.view(3, 1, 1) + mean.view(3, 1, 1)
    expected = torch.from_numpy(row.reshape(3, 32, 32).astype(np.float32) / 255)
    torch.testing.assert_close(pixels, expected, atol=1e-5, rtol=0)
    # root may also be the batches folder itself
    b2 = data.get("cifar10", root=tmp_path / "cifar-10-batches-py", seed=0)
    assert torch.equal(b.test_x, b2.test_x)
    # seeds give different, reproducible splits of the same files
    b3 = data.get("cifar10", root=tmp_path, seed=3)
    assert not np.array_equal(b.train_index, b3.train_index)
    assert np.array_equal(b3.train_index, data.get("cifar10", root=tmp_path, seed=3).train_index)


def test_cifar100_reader(tmp_path):
    write_cifar100(tmp_path)
    b = data.get("cifar100", root=tmp_path)
    assert b.num_classes == 100 and b.classes[7] == "class7"
    assert (len(b.train_y), len(b.val_y), len(b.test_y)) == (100, 100, 100)
    assert int(b.train_y.max()) < 100


def test_default_root_is_workspace_data(tmp_path, _workspace):
    write_cifar10(_workspace / "data", per_batch=4)
    assert len(data.get("cifar10").test_y) == 4


def test_missing_folder_names_path_and_files(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.get("cifar10", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg and "data_batch_1" in msg and "batches.meta" in msg
    assert "download=True" in msg and "--data-root DIR" in msg  # the Python and the command-line way
    folder = write_cifar10(tmp_path / "partial")
    (folder / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="missing test_batch"):
        data.get("cifar10", root=tmp_path / "partial")


def test_corrupt_files(tmp_path):
    folder = write_cifar100(tmp_path / "a")
    (folder / "train").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match=r"not a readable CIFAR pickle") as err:
        data.get("cifar100", root=tmp_path / "a")
    assert str(folder / "train") in str(err.value)

    folder = write_cifar100(tmp_path / "b")
    with open(folder / "test", "wb") as fh:
        pickle.dump({"data": np.zeros((3, 100), np.uint8), "fine_labels": [0, 1, 2]}, fh)
    with pytest.raises(ValueError, match=r"expected uint8 data of shape \(N, 3072\)"):
        data.get("cifar100", root=tmp_path / "b")

    folder = write_cifar100(tmp_path / "c")
    with open(folder / "test", "wb") as fh:
        pickle.dump({"data": np.zeros((3, 3072), np.uint8), "labels": [0, 1, 2]}, fh)
    with pytest.raises(ValueError, match="lacks the keys 'data' and 'fine_labels'"):
        data.get("cifar100", root=tmp_path / "c")


def _tar_gz(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return buf.getvalue()


def test_fetch_checks_md5_and_extracts(tmp_path):
    # A local file:// archive stands in for the network: the real download code path runs.
    src = write_cifar10(tmp_path / "src", per_batch=4)
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(_tar_gz(src))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    spec = cifar.SPECS["cifar10"]
    with pytest.raises(ValueError, match="checksum mismatch"):
        cifar.fetch(spec, tmp_path / "dest", url=archive.as_uri(), md5="0" * 32)
    assert not (tmp_path / "dest" / "cifar-10-batches-py").exists()
    folder = cifar.fetch(spec, tmp_path / "dest", url=archive.as_uri(), md5=md5)
    assert folder == tmp_path / "dest" / "cifar-10-batches-py"
    assert len(data.get("cifar10", root=tmp_path / "dest").test_y) == 4
    with pytest.raises(ConnectionError, match="could not download"):
        cifar.fetch(spec, tmp_path / "x", url=(tmp_path / "nope.tar.gz").as_uri())


def test_official_checksums():
    assert cifar.SPECS["cifar10"].md5 == "c58f30108f718f92721af3b95e74349a"
    assert cifar.SPECS["cifar100"].md5 == "eb9058c3a382ffc7106e4002c42a8d85"


# --------------------------------------------------------------------------- augmentation
def _images(n: int = 6) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_augment_shape_and_determinism():
    x = _images()
    aug = Augment(pad=4, flip=True)
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == x.dtype and a.is_contiguous()
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_augment_is_a_shift_with_zero_padding():
    x = _images(64)
    out = Augment(pad=2, flip=False)(x, torch.Generator().manual_seed(0))
    shifted = 0
    for k in range(len(x)):  # check each image against the 25 possible shifts (test only)
        matches = []
        padded = torch.nn.functional.pad(x[k], (2, 2, 2, 2))
        for dy in range(5):
            for dx in range(5):
                if torch.equal(out[k], padded[:, dy:dy + 32, dx:dx + 32]):
                    matches.append((dy, dx))
        assert matches, "every output is a crop of the zero-padded input"
        shifted += matches[0] != (2, 2)
    assert shifted > 40  # most images really moved (1/25 stay put on average)


def test_augment_flip_only_when_asked():
    x = _images(64)
    flipped = Augment(pad=0, flip=True)(x, torch.Generator().manual_seed(0))
    is_flip = [torch.equal(flipped[k], x[k].flip(-1)) for k in range(64)]
    is_same = [torch.equal(flipped[k], x[k]) for k in range(64)]
    assert all(f or s for f, s in zip(is_flip, is_same)) and 16 < sum(is_flip) < 48
    assert torch.equal(Augment(pad=0, flip=False)(x), x)
    with pytest.raises(ValueError, match="NCHW"):
        Augment()(x[0])


# --------------------------------------------------------------------------- real CIFAR-10 (../shared)
def test_real_cifar10_end_to_end(cifar10_root):
    """All 60,000 real images through data.get; one image checked against its own JPEG."""
    import io

    import realdata
    from PIL import Image

    b = data.get("cifar10", root=cifar10_root, seed=0)
    assert (len(b.train_y), len(b.val_y), len(b.test_y)) == (25000, 25000, 10000)
    assert b.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert np.bincount(b.train_y.numpy()).tolist() == [2500] * 10  # stratified halves of 5000 per class
    assert np.bincount(b.test_y.numpy()).tolist() == [1000] * 10
    # the README's per-channel statistics of the real training set (mean to 4 decimals, std ~0.002 lower)
    assert b.mean == pytest.approx((0.4914, 0.4822, 0.4465), abs=1e-3)
    assert b.std == pytest.approx((0.2470, 0.2435, 0.2616), abs=4e-3)
    torch.testing.assert_close(b.train_x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    # image k of data_batch_1 is npz image perm[k] (the tool's seed-0 shuffle of the training images)
    z = np.load(realdata.NPZ)
    train_ids = np.flatnonzero(z["train"])[np.random.default_rng(0).permutation(int(z["train"].sum()))]
    k = int(np.flatnonzero(b.train_index < 10000)[3])  # a train-split image from the first batch file
    i = train_ids[b.train_index[k]]
    jpeg = z["jpeg"][z["offsets"][i]:z["offsets"][i + 1]].tobytes()
    pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255
    restored = b.train_x[k] * torch.tensor(b.std).view(3, 1, 1) + torch.tensor(b.mean).view(3, 1, 1)
    torch.testing.assert_close(restored, torch.from_numpy(pixels), atol=1e-5, rtol=0)
    assert int(b.train_y[k]) == int(z["labels"][i])


def test_channel_stats_are_exact_for_uint8_and_float():
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, size=(37, 3, 5, 4), dtype=np.uint8)
    idx = np.array([0, 3, 5, 8, 20, 36])
    mean, std = bundle_mod.channel_stats(imgs, idx, chunk=4)  # several chunks, one partial
    ref = imgs[idx].astype(np.float64) / 255
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), rtol=0, atol=1e-15)
    np.testing.assert_allclose(std, ref.std(axis=(0, 2, 3), ddof=1), rtol=1e-12)
    fmean, fstd = bundle_mod.channel_stats(ref.astype(np.float32), chunk=5)
    np.testing.assert_allclose(fmean, ref.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(fstd, ref.std(axis=(0, 2, 3), ddof=1), rtol=1e-5)


def test_real_data_cache_reuses_a_complete_folder_and_names_why_it_is_missing(tmp_path, monkeypatch):
    import realdata

    monkeypatch.setattr(realdata, "NPZ", tmp_path / "absent.npz")
    assert "absent.npz is absent" in realdata.unavailable()
    with pytest.raises(FileNotFoundError, match="absent"):
        realdata.cifar10_root.__wrapped__()
    # a complete folder under the npz's key is returned as is: the tool is not run again
    npz = tmp_path / "cifar10-jpeg.npz"
    npz.write_bytes(b"stand-in")
    monkeypatch.setattr(realdata, "NPZ", npz)
    monkeypatch.setattr(realdata, "unavailable", lambda: None)
    monkeypatch.setenv("NASBENCH_LAB_DATA_CACHE", str(tmp_path / "cache"))
    st = npz.stat()
    final = tmp_path / "cache" / f"cifar10-{st.st_size}-{st.st_mtime_ns}"
    for f in realdata.FILES:
        (final / realdata.FOLDER).mkdir(parents=True, exist_ok=True)
        (final / realdata.FOLDER / f).write_bytes(b"")

    def no_tool(*args, **kwargs):
        raise AssertionError("the tool ran although the cache was complete")

    monkeypatch.setattr(realdata.subprocess, "run", no_tool)
    assert realdata.cifar10_root.__wrapped__() == final


# --------------------------------------------------------------------------- issue 23: files from outside
def test_a_rewrite_with_the_same_mtimes_is_read_again(tmp_path):
    """The cache was keyed on mtimes only: a folder rewritten and `touch -r`'d back was served stale."""
    folder = write_cifar10(tmp_path)
    x, y, *_ = cifar.read("cifar10", tmp_path)
    path = folder / "data_batch_1"
    before = path.stat()
    d = pickle.loads(path.read_bytes())
    d[b"labels"] = [9 - v for v in d[b"labels"]]  # same size, other content
    path.write_bytes(pickle.dumps(d))
    import os

    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the old mtime, as cp -p / rsync -t leave it
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    y2 = cifar.read("cifar10", tmp_path)[1]
    assert y2[:20].tolist() == [9 - v for v in y[:20].tolist()] and y2[20:].tolist() == y[20:].tolist()
    assert cifar.read("cifar10", tmp_path)[1] is y2  # an unchanged folder is still served from the cache


def test_a_valid_batch_holding_empty_bytes_loads(tmp_path):
    """Python 3 pickles b'' in protocol 2 as builtins.bytes(): a valid batch, refused before."""
    folder = write_cifar10(tmp_path)
    d = pickle.loads((folder / "data_batch_2").read_bytes())
    d[b"filenames"][0] = b""
    (folder / "data_batch_2").write_bytes(pickle.dumps(d, protocol=2))
    assert b"__builtin__\nbytes" in (folder / "data_batch_2").read_bytes()
    x, y, *_ = cifar.read("cifar10", tmp_path)
    assert x.shape == (100, 3, 32, 32) and len(y) == 100
    from nasbench_lab.data import safe_pickle

    with pytest.raises(ValueError, match=r"only as bytes\(\)"):  # bytes(...) with an argument stays refused
        safe_pickle.loads(b"\x80\x02c__builtin__\nbytes\nK\x05\x85R.")


def test_a_fifo_or_an_oversized_file_in_the_folder_is_refused_before_reading(tmp_path, monkeypatch):
    import os

    from nasbench_lab.data import safe_pickle

    folder = write_cifar10(tmp_path / "a")
    size = (folder / "data_batch_1").stat().st_size
    monkeypatch.setattr(safe_pickle, "MAX_FILE_BYTES", size - 1)
    with pytest.raises(ValueError, match=rf"data_batch_1 is {size:,} bytes; files of at most {size - 1:,} bytes.*"
                                         r"safe_pickle\.MAX_FILE_BYTES"):
        cifar.read("cifar10", tmp_path / "a")
    monkeypatch.undo()
    folder = write_cifar10(tmp_path / "b")
    (folder / "data_batch_4").unlink()
    os.mkfifo(folder / "data_batch_4")  # reading it would block for ever; it was reported "missing"
    with pytest.raises(ValueError, match=r"data_batch_4 is not a regular file \(it is a FIFO"):
        cifar.read("cifar10", tmp_path / "b")
