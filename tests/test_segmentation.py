"""Segmentation (issue 26): the Auto-DeepLab trellis space, the task's metric, the data, the Trainer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nasbench_lab import data, spaces, tasks
from nasbench_lab.spaces.autodeeplab import AutoDeepLabSpace, count_paths


def brute_force(layers: int, pin_first: bool) -> list[tuple[int, ...]]:
    """Every level sequence that starts at 1/4 (or 1/8 when unpinned) and moves one level at most."""
    first = {0} if pin_first else {0, 1}
    return [g for g in itertools.product(range(4), repeat=layers)
            if g[0] in first and all(abs(a - b) <= 1 for a, b in zip(g, g[1:]))]


# --------------------------------------------------------------------------- counting
def test_thesis_count_and_public_code_count():
    # 003 §4.4.3: "reduces the search space size from 10^19 to 2.9 x 10^4"; Fibonacci F(23), F(25)
    assert spaces.get("autodeeplab").size == 28_657 == len(spaces.get("autodeeplab"))
    assert AutoDeepLabSpace(pin_first=False, name="x").size == 75_025
    assert spaces.get("autodeeplab-l6").size == 89 and AutoDeepLabSpace(layers=7, name="x").size == 233


@pytest.mark.parametrize("pin", [True, False])
def test_size_and_enumeration_match_a_brute_force(pin):
    for layers in range(1, 9):
        sp = AutoDeepLabSpace(layers=layers, pin_first=pin, name="x")
        truth = brute_force(layers, pin)
        assert sp.size == len(truth) == count_paths(layers, pin)
        assert sorted(a.genes for a in sp.enumerate()) == sorted(truth)


def test_counts_follow_fibonacci_for_long_trellises():
    fib = [0, 1]
    while len(fib) < 60:
        fib.append(fib[-1] + fib[-2])
    # with 4 levels the pinned count is F(2L-1) (checked by brute force above up to L = 8)
    assert [count_paths(L) for L in range(1, 13)] == [fib[2 * L - 1] for L in range(1, 13)]


# --------------------------------------------------------------------------- strings, neighbours, sampling
def test_strings_round_trip_and_errors():
    sp = spaces.get("autodeeplab-l6")
    a = sp.parse("4-8-16-16-8-8")
    assert a.genes == (0, 1, 2, 2, 1, 1) and str(a) == "4-8-16-16-8-8" and sp.parse(a.genes) == a
    for text, words in [("4-8-16", "expected 6"), ("4-8-16-16-8-9", "'9' is not a downsampling rate"),
                        ("4-16-16-16-8-8", "jumps from 1/4 to 1/16"), ("8-8-16-16-8-8", "layer 1 is at 1/8"),
                        ("", "expected 6")]:
        with pytest.raises(ValueError, match="autodeeplab-l6") as info:
            sp.parse(text)
        assert words in str(info.value) and "4-8-16-16-8-8" in str(info.value)


def test_neighbours_sample_and_encoding():
    sp = spaces.get("autodeeplab")
    a = sp.default()
    nbrs = sp.neighbours(a)
    # every neighbour changes one layer and is a valid path; brute force over single changes
    expect = set()
    for i in range(sp.layers):
        for s in range(4):
            g = a.genes[:i] + (s,) + a.genes[i + 1:]
            if s != a.genes[i] and g[0] == 0 and all(abs(x - y) <= 1 for x, y in zip(g, g[1:])):
                expect.add(g)
    assert {b.genes for b in nbrs} == expect and all(sp.distance(a, b) == 1 for b in nbrs)
    rng = np.random.default_rng(0)
    draws = [sp.sample(rng) for _ in range(200)]
    assert all(sp.parse(str(d)) == d for d in draws)
    # a trellis too long to enumerate is still sampled uniformly over paths, through the exact counts
    big = AutoDeepLabSpace(layers=30, name="x")
    assert not big.numerable and big.size == count_paths(30)
    assert len(big.sample(0).genes) == 30
    enc = sp.encode(a)
    assert enc.sum() == sp.layers and enc.shape == (sp.encoding_length["onehot"],)
    assert sp.encoding_length["onehot"] == sum(len(r) for r in sp.reachable) == 1 + 2 + 3 + 4 * 9


def test_uniform_sampling_over_paths_small_trellis():
    sp = AutoDeepLabSpace(layers=3, name="x")  # 5 paths
    rng = np.random.default_rng(1)
    counts = {}
    for _ in range(5000):
        g = sp.sample(rng).genes
        counts[g] = counts.get(g, 0) + 1
    assert len(counts) == 5 and min(counts.values()) > 850  # 1000 expected each


# --------------------------------------------------------------------------- networks
@pytest.mark.parametrize("name", ["autodeeplab-l6", "autodeeplab-adl"])
def test_model_supernet_weight_sharing_and_graph(name):
    sp = spaces.get(name)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    a = sp.sample(3)
    net = sp.supernet(num_classes=11).eval()
    model = sp.model(a, num_classes=11).eval()
    missing, unexpected = model.load_state_dict(net.state_dict(), strict=False)
    assert not missing  # every weight of the path is a supernet weight under the same key
    with torch.no_grad():
        assert net(x, a).shape == (2, 11, 32, 32)
        torch.testing.assert_close(model(x), net(x, a))
    assert sp.params(a) == sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in net.parameters())
    g = sp.graph(a)
    path = [g.nodes[f"L{i + 1}"]["level"] for i in range(sp.layers)]
    assert tuple(path) == a.genes and g.graph["layers"] == sp.layers
    with pytest.raises(ValueError, match="built for"):
        model(x, sp.parse("4-4-4-4-4-4") if sp.layers == 6 else sp.parse("-".join(["4"] * sp.layers)))


def test_channels_follow_b_f_s_over_4():
    sp = AutoDeepLabSpace(layers=4, filter_multiplier=3, block_multiplier=2, name="x")
    assert sp.channels == (6, 12, 24, 48)  # B*F*s/4 at s = 4, 8, 16, 32
    m = sp.model("4-8-16-32")
    assert m.nodes["4_3"].cell.body[0].weight.shape[:2] == (48, 48)


# --------------------------------------------------------------------------- the task
def test_miou_against_a_hand_computed_confusion_matrix():
    task = tasks.Segmentation(num_classes=3, ignore_index=255)
    y = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 0]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 0]])
    logits = torch.nn.functional.one_hot(pred, 3).permute(2, 0, 1).float()[None]  # 1 x 3 x 2 x 4
    cm = task.stats(logits, y[None])
    # rows true, columns predicted; the ignored pixel (true 255, predicted 2) is not counted
    hand = torch.tensor([[2., 1., 0.], [0., 2., 0.], [1., 0., 1.]])
    torch.testing.assert_close(cm, hand.double())
    # IoU_0 = 2/(3+3-2) = 1/2; IoU_1 = 2/(2+3-2) = 2/3; IoU_2 = 1/(2+1-1) = 1/2
    miou = (1 / 2 + 2 / 3 + 1 / 2) / 3
    assert float(task.score(cm)) == pytest.approx(miou)
    m, iou = tasks.miou_from_confusion(cm)
    assert m == pytest.approx(miou) and iou == pytest.approx([0.5, 2 / 3, 0.5])
    # a class in neither truth nor prediction is left out of the mean (not counted as 0 or 1)
    cm4 = torch.zeros(4, 4, dtype=torch.float64)
    cm4[:3, :3] = hand
    assert float(tasks.Segmentation(4).score(cm4)) == pytest.approx(miou)
    assert np.isnan(tasks.miou_from_confusion(cm4)[1][3])
    # the per-pixel loss skips the ignored pixel
    ref = torch.nn.functional.cross_entropy(logits[0].permute(1, 2, 0).reshape(-1, 3)[y.reshape(-1) != 255],
                                            y.reshape(-1)[y.reshape(-1) != 255])
    torch.testing.assert_close(task.loss(logits, y[None]), ref)


def test_classification_task_is_accuracy():
    task = tasks.Classification(3)
    logits = torch.tensor([[3., 0, 0], [0, 2., 0], [0, 0, 1.], [1., 2., 0]])
    stats = task.stats(logits, torch.tensor([0, 1, 0, 0]))
    assert float(task.score(stats)) == pytest.approx(2 / 4)


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def scenes():
    return data.get("scenes")


def test_scenes_are_fixed_and_labelled(scenes):
    again = data.get("scenes")
    assert torch.equal(scenes.train_y, again.train_y) and torch.equal(scenes.test_x, again.test_x)
    assert scenes.task == "segmentation" and scenes.num_classes == 11 and scenes.input_shape == (3, 32, 32)
    assert scenes.train_y.shape[1:] == (32, 32) and len(scenes.train_y) + len(scenes.val_y) == 1200
    labels = torch.unique(torch.cat([scenes.train_y.flatten(), scenes.test_y.flatten()]))
    assert labels.tolist() == list(range(11))  # background and every digit + 1, nothing ignored
    # the labelled bodies are brighter than the background (measured: 0.44 vs 0.17), and about half of
    # the pixels are background (0.55 measured)
    from nasbench_lab.data.scenes import _scenes

    x, m, _, _ = _scenes()
    fg = x.max(1)[m > 0].mean()
    bg = x.max(1)[m == 0].mean()
    assert fg > bg + 0.2 and 0.4 < (m == 0).mean() < 0.7


def test_seg_augment_moves_image_and_mask_together(scenes):
    from nasbench_lab.data.scenes import SegAugment

    y = scenes.train_y[:8]
    x = y[:, None].float().expand(-1, 3, -1, -1) + 1.0  # the image is its own label map (+1; 0 = padding)
    xa, ya = SegAugment(pad=4).pair(x, y, generator=torch.Generator().manual_seed(0))
    inside = ya != 255
    assert torch.equal(xa[:, 0][inside], ya[inside].float() + 1.0)
    assert torch.all(xa[:, 0][~inside] == 0) and (~inside).any()
    assert not torch.equal(ya, y)  # it did move


def _png(path, array):
    from PIL import Image

    Image.fromarray(array).save(path)


def test_segfolder_reads_a_folder_and_names_bad_files(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        _png(tmp_path / "images" / f"f{i}.png", rng.integers(0, 255, (8, 10, 3), dtype=np.uint8))
        m = rng.integers(0, 3, (8, 10), dtype=np.uint8)
        m[0, 0] = 255
        _png(tmp_path / "masks" / f"f{i}.png", m)
    (tmp_path / "classes.txt").write_text("road\ncar\nsky\n")
    b = data.get("segfolder", root=tmp_path)
    assert b.task == "segmentation" and b.num_classes == 3 and b.classes == ["road", "car", "sky"]
    assert len(b.train_y) + len(b.val_y) + len(b.test_y) == 6 and b.train_y.shape[1:] == (8, 10)
    assert (b.train_y == 255).any()
    _png(tmp_path / "masks" / "f2.png", np.full((8, 10), 3, np.uint8))
    with pytest.raises(ValueError, match=r"f2\.png has label id 3, out of range"):
        data.get("segfolder", root=tmp_path)
    _png(tmp_path / "masks" / "f2.png", np.zeros((7, 10), np.uint8))
    with pytest.raises(ValueError, match=r"image .*f2\.png is 10x8 but its mask .*f2\.png is 10x7"):
        data.get("segfolder", root=tmp_path)
    (tmp_path / "masks" / "f2.png").unlink()
    with pytest.raises(ValueError, match=r"no mask for image .*f2\.png"):
        data.get("segfolder", root=tmp_path)
    with pytest.raises(ValueError, match="data_root"):
        data.get("segfolder")


# --------------------------------------------------------------------------- the Trainer, every sampler unchanged
@pytest.mark.parametrize("method, options", [
    ("uniform", {}),
    ("mcts", {"warmup": 0.5}),
    ("mcts-iterative", {"warmup": 0.25, "iterations": 2, "rank_batches": 1}),
])
def test_samplers_train_the_trellis_supernet(method, options, scenes):
    from nasbench_lab.training.trainer import Trainer

    tr = Trainer(space="autodeeplab-l6", method=method, method_options=options, steps=8, batch_size=8,
                 val_batch_size=16, rank_sample=6, rank_images=16, recalibration_batches=1, data=scenes)
    assert tr.cfg.dataset == "scenes" and tr.task.name == "segmentation"  # the space's default dataset
    rows = [tr.step() for _ in range(8)]
    assert all(0.0 <= r["reward"] <= 1.0 and np.isfinite(r["loss"]) for r in rows)
    arch = tr.space.parse(rows[-1]["arch"])
    # the reward is the minibatch mIoU, computed here independently from the logits
    batch = (scenes.val_x[:16], scenes.val_y[:16])
    logits = tr.outputs(arch, batch[0])
    pred = logits.argmax(1)
    ious = []
    for c in range(11):
        inter = int(((pred == c) & (batch[1] == c)).sum())
        union = int(((pred == c) | (batch[1] == c)).sum())
        if union:
            ious.append(inter / union)
    assert tr.reward(arch, batch) == pytest.approx(float(np.mean(ious)), abs=1e-6)
    summary = tr.finish()
    assert len(tr.ranking) == 6 and tr.ranking["estimate"].between(0, 100).all()
    assert summary is not None


def test_a_classification_dataset_on_the_trellis_is_refused():
    from nasbench_lab.training.trainer import Trainer

    with pytest.raises(ValueError, match="digits.*classification.*segmentation"):
        Trainer(space="autodeeplab-l6", dataset="digits", steps=2)


def test_cli_run_uses_the_embedded_scenes(tmp_path, monkeypatch, capsys):
    from nasbench_lab import cli

    monkeypatch.setenv("NASBENCH_LAB_HOME", str(tmp_path))
    assert cli.main(["run", "--space", "autodeeplab-l6", "--method", "uniform", "--steps", "4", "--batch-size", "4",
                     "--rank-images", "8", "--store", str(tmp_path / "runs.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "finished" in out and "ranking of 89 architectures" in out
    assert cli.main(["spaces"]) == 0
    listing = capsys.readouterr().out
    assert "autodeeplab " in listing and "28,657" in listing


# --------------------------------------------------------------------------- views
def test_trellis_view_and_visits():
    from nasbench_lab.viz.dag import dag_figure
    from nasbench_lab.viz.trellis import trellis_figure, trellis_visits

    sp = spaces.get("autodeeplab-l6")
    counts = {"4-8-16-16-8-8": 3, "4-8-8-8-8-4": 2, "not a path": 5}
    v = trellis_visits(sp, counts)
    # layer 2 at 1/8: both paths (3 + 2); layer 2 at 1/4: none; layer 6 at 1/4: the second path only
    assert v[(2, 1)] == 5 and (2, 0) not in v and v[(6, 0)] == 2 and v[(6, 1)] == 3 and v[(1, 0)] == 5
    assert sum(v.values()) == 6 * 5
    fig = trellis_figure(sp, "4-8-16-16-8-8", v)
    by = {t.name: t for t in fig.data}
    assert list(by["path"].y) == [0, 0, 1, 2, 2, 1, 1, 1] and list(by["path"].x) == list(range(8))
    nodes = by["nodes"]
    assert len(nodes.x) == 1 + sum(len(r) for r in sp.reachable)
    assert dict(zip(zip(nodes.x, nodes.y), nodes.marker.color))[(2, 1)] == 5
    # every allowed move once: 1 + 2 + ... edges from the brute force
    moves = sum(1 for layer in range(6) for s in sp.reachable[layer]
                for p in (sp.reachable[layer - 1] if layer else (0,)) if abs(p - s) <= 1)
    assert list(by["moves"].x).count(None) == moves
    live = dag_figure(sp, "4-8-16-16-8-8", visits=counts)  # the dashboard's DAG view on a trellis space
    assert {t.name for t in live.data} == {"moves", "nodes", "path"}


def test_mask_panel_of_a_trained_path(scenes):
    from nasbench_lab.training.trainer import Trainer
    from nasbench_lab.viz.trellis import mask_figure

    tr = Trainer(space="autodeeplab-l6", steps=2, batch_size=8, val_batch_size=8, data=scenes, rank_at_end=False)
    tr.step()
    p = tr.predictions("4-8-16-16-8-8", n=3)
    assert p["images"].shape == (3, 3, 32, 32) and 0 <= p["images"].min() and p["images"].max() <= 1
    assert p["truth"].shape == p["pred"].shape == (3, 32, 32) and len(p["iou"]) == 11
    fig = mask_figure(p["images"], p["truth"], p["pred"], p["classes"], iou=p["iou"])
    assert sum(t.type == "image" for t in fig.data) == 9


def test_seed_agreement_of_a_ground_truth():
    import pandas as pd

    from nasbench_lab.training.groundtruth import seed_agreement

    per_seed = pd.DataFrame({0: [1.0, 2.0, 3.0, 4.0], 1: [1.0, 3.0, 2.0, 4.0]}, index=list("abcd"))
    got = seed_agreement(per_seed)
    # 6 pairs, one discordant (b, c): tau = (5 - 1) / 6; Spearman 1 - 6 * (1 + 1) / (4 * 15) = 0.8
    assert got["kendall_tau"] == pytest.approx(4 / 6) and got["spearman"] == pytest.approx(0.8) and got["n"] == 4
    assert seed_agreement(per_seed[[0]]) is None


def test_the_shipped_scenes_ground_truth_is_a_ranking_two_seeds_agree_on():
    """Issue 26: the autodeeplab-l6/scenes truth must rank paths the same way under two seeds. Its
    provenance's agreement is recomputed from the table's per-seed columns, and the path matters
    far more than the seed (measured numbers of the shipped build)."""
    from scipy.stats import kendalltau

    from nasbench_lab import benchmarks, provenance

    bench = benchmarks.get("autodeeplab-l6", dataset="scenes")
    rec = provenance.read(bench.path)
    t = bench.table
    assert bench.epochs == 80 and rec["paths"] == len(t) and rec["of_paths"] == 89
    assert (t["n_seeds"] == 2).all() and np.allclose(t["acc"], (t["acc_seed0"] + t["acc_seed1"]) / 2)
    tau = kendalltau(t["acc_seed0"], t["acc_seed1"]).statistic
    assert tau == pytest.approx(rec["seed_agreement"]["kendall_tau"]) and rec["seed_agreement"]["n"] == len(t)
    assert tau >= 0.6  # (the 150-step table it replaces: 0.04)
    # the best and the worst path lie many seed spreads apart
    assert t["acc"].max() - t["acc"].min() > 5 * t["std"].mean()


def test_params_and_flops_by_hand_for_a_one_layer_trellis():
    sp = AutoDeepLabSpace(layers=1, filter_multiplier=1, block_multiplier=2, name="x")  # channels 2, 4, 8, 16
    a = sp.parse("4")
    # stem 3->8 (3x3) + BN, 8->2 (3x3) + BN; cell: two 3x3 2->2 convs + BNs; ASPP(2->16): 1x1 + BN, 3x3 + BN,
    # pooled 1x1 with bias, 1x1 projection 48->16 + BN; skip 1x1 2->8 + BN; fuse 3x3 24->16 + BN; classifier 16->11
    params = (216 + 16 + 144 + 4) + 2 * (36 + 4) + (32 + 32 + 288 + 32 + 48 + 768 + 32) + (16 + 16) \
        + (3456 + 32) + (176 + 11)
    assert sp.params(a) == params == 5399
    # MACs for a 32x32 input: stem at 16x16 and 8x8, everything else at 8x8 (the pooled branch at 1x1)
    macs = 256 * 8 * 27 + 64 * 2 * 72 + 2 * 64 * 2 * 18 + 64 * 16 * 2 + 64 * 16 * 18 + 32 + 64 * 16 * 48 \
        + 64 * 8 * 2 + 64 * 16 * 24 * 9 + 64 * 11 * 16
    assert sp.flops(a) == macs == 372_256
