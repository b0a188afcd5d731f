"""The gradient-interference instrument against values computed independently: closed forms on a
hand-built two-layer supernet, brute force on the real supernets, and its command line."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from nasbench_lab import spaces
from nasbench_lab.cli import main
from nasbench_lab.training import interference as I


class TwoLayer(nn.Module):
    """Layer 1 a shared linear map W (d -> h); layer 2 one head per child (h -> c)."""

    def __init__(self, d: int = 5, h: int = 4, c: int = 3, heads: str = "abc", shared: bool = True) -> None:
        super().__init__()
        self.shared = nn.Linear(d, h, bias=False) if shared else None
        self.heads = nn.ModuleDict({k: nn.Linear(d if not shared else h, c, bias=False) for k in heads})

    def forward(self, x: torch.Tensor, arch) -> torch.Tensor:
        z = self.shared(x) if self.shared is not None else x
        return self.heads[arch[0]](z)


def _cos(u: np.ndarray, v: np.ndarray) -> float:
    return float(u.ravel() @ v.ravel() / np.sqrt((u.ravel() @ u.ravel()) * (v.ravel() @ v.ravel())))


@pytest.fixture(scope="module")
def two_layer():
    torch.manual_seed(0)
    net = TwoLayer().double()
    x = torch.randn(7, 5, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    return net, x, y


def test_groups_of_the_hand_built_supernet(two_layer):
    net, _, _ = two_layer
    groups = {g.name: g for g in I.parameter_groups(net)}
    assert set(groups) == {"shared", "heads.a", "heads.b", "heads.c"}
    assert not groups["shared"].searched and groups["heads.b"].searched
    assert groups["heads.b"].layer == "heads"


def test_linear_loss_closed_form(two_layer):
    """L_a = sum of the logits: dL/dW = (V_a^T 1) (sum_n x_n)^T, so cos(a, b) on W = cos(V_a^T 1, V_b^T 1)
    whatever the inputs."""
    net, x, y = two_layer
    res = I.measure(net, (x, y), [("a",), ("b",), ("c",)], scope="all", loss_fn=lambda out, _y: out.sum())
    u = {k: net.heads[k].weight.detach().numpy().sum(0) for k in "abc"}  # V_k^T 1 (V_k is c x h)
    for (i, a), (j, b) in itertools.combinations(enumerate("abc"), 2):
        assert res.cosine[i, j] == pytest.approx(_cos(u[a], u[b]), abs=1e-12)
        assert res.shared_groups()[i, j] == 1  # only W: the heads differ
    assert res.distance[0, 1] == 1


def test_cross_entropy_closed_form(two_layer):
    """Cross-entropy: dL/dW = V_a^T (P_a - Y)^T X / N with P_a = softmax(X W^T V_a^T), by hand in numpy."""
    net, x, y = two_layer
    res = I.measure(net, (x, y), [("a",), ("b",)], scope="all")
    W = net.shared.weight.detach().numpy()
    X, Y = x.numpy(), np.eye(3)[y.numpy()]

    def grad_w(k: str) -> np.ndarray:
        V = net.heads[k].weight.detach().numpy()
        z = X @ W.T @ V.T
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return V.T @ (p - Y).T @ X / len(X)

    assert res.cosine[0, 1] == pytest.approx(_cos(grad_w("a"), grad_w("b")), abs=1e-12)
    assert res.cosine[0, 0] == pytest.approx(1.0)
    # searched scope (the default here: the supernet has candidate heads): a and b share no head
    auto = I.measure(net, (x, y), [("a",), ("b",)])
    assert np.isnan(auto.cosine[0, 1]) and auto.shared_groups()[0, 1] == 0


def test_children_that_share_no_parameter_have_nothing_to_compare():
    torch.manual_seed(1)
    net = TwoLayer(shared=False)
    x, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    res = I.measure(net, (x, y), [("a",), ("b",), ("c",)], scope="all")
    off = res.cosine[~np.eye(3, dtype=bool)]
    assert np.isnan(off).all() and (res.shared_groups()[~np.eye(3, dtype=bool)] == 0).all()
    s = res.summary()
    assert s["sharing_pairs"] == 0 and s["conflict"] == 0.0 and np.isnan(s["mean_cosine"])
    assert res.by_distance().empty
    assert res.pairs()["shared_groups"].tolist() == [0, 0, 0]


@pytest.fixture(scope="module")
def nb201():
    torch.manual_seed(0)
    sp = spaces.get("nb201")
    net = sp.supernet(num_classes=4)
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])  # 8x8: the cells do not care
    return sp, net, x, y


def test_identical_children_have_cosine_one(nb201):
    sp, net, x, y = nb201
    a = sp.parse(I.spread_archs(sp, 1, seed=3)[0])
    res = I.measure(net, (x, y), [a, a], sp, scope="all")
    assert res.cosine[0, 1] == pytest.approx(1.0, abs=1e-9)
    assert res.distance[0, 1] == 0
    per_layer = [m[0, 1] for m in res.layer_cosine().values()]
    shared = [v for v in per_layer if np.isfinite(v)]  # a cell of skips and poolings has no weight to share
    assert len(shared) >= 4 and shared == pytest.approx([1.0] * len(shared), abs=1e-9)


def test_nb201_overall_and_per_operator_cosine_by_brute_force(nb201):
    """Against torch.autograd.grad of each child, flattened over the groups both use, in numpy."""
    sp, net, x, y = nb201
    a = sp.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    b = sp.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|")
    res = I.measure(net, (x, y), [a, b], sp)
    names = [n for n, p in net.named_parameters()]
    params = list(net.parameters())

    def grads(arch):
        g = torch.autograd.grad(torch.nn.functional.cross_entropy(net(x, arch), y), params, allow_unused=True)
        return {n: None if t is None else t.double().numpy().ravel() for n, t in zip(names, g)}

    ga, gb = grads(a), grads(b)
    # shared searched ops: edges 0, 2 (conv3x3 both) and 5 (conv1x1 both); edge 1 and 4 differ, edge 3 is a skip
    keep = [n for n in names if ".edges." in n and ga[n] is not None and gb[n] is not None]
    assert {n.split(".")[3] for n in keep} == {"0", "2", "5"}
    u, v = np.concatenate([ga[n] for n in keep]), np.concatenate([gb[n] for n in keep])
    assert res.cosine[0, 1] == pytest.approx(_cos(u, v), abs=1e-9)
    assert res.distance[0, 1] == 2
    # per operator: the mean of each shared group's own cosine
    ops = [_cos(np.concatenate([ga[n] for n in ns]), np.concatenate([gb[n] for n in ns]))
           for ns in _group_by_op(keep).values()]
    assert res.op_cosine()[0, 1] == pytest.approx(np.mean(ops), abs=1e-9)
    assert res.shared_groups()[0, 1] == len(ops) == 15 * 3  # 3 shared conv ops in each of the 15 cells


def _group_by_op(names):
    out: dict[str, list[str]] = {}
    for n in names:
        parts = n.split(".")
        out.setdefault(".".join(parts[:5]), []).append(n)  # layers.i.edges.k.<op>
    return out


def test_op_matrix_agrees_with_direct_measurements(nb201):
    """GM-NAS's op x op matrix: entry (i, j) of decision e = the cosine of the two children with
    e = op i and e = op j (the rest the base's), measured directly; the diagonal is 1."""
    sp, net, x, y = nb201
    base = sp.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    om = I.op_matrices(net, (x, y), sp, bases=[base])
    assert len(om["matrices"]) == 6 and om["options"][0] == ["none", "skip_connect", "nor_conv_1x1",
                                                               "nor_conv_3x3", "avg_pool_3x3"]
    assert om["children"] == 1 + 6 * 4
    m = np.array(om["matrices"][4], float)
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-9)
    kids = [sp.arch(base.genes[:4] + (o,) + base.genes[5:]) for o in (0, 3)]
    direct = I.measure(net, (x, y), kids, sp, scope="all").cosine[0, 1]
    assert m[0, 3] == pytest.approx(direct, abs=1e-9) and m[3, 0] == pytest.approx(direct, abs=1e-9)
    with pytest.raises(ValueError, match="independent"):
        I.op_matrices(net, (x, y), spaces.get("pooling"))


def test_pooling_every_layer_shared_and_resolution_split():
    """Pooling: every child uses every weight; per-layer cosines by brute force, and the split by
    whether the two children run a layer at the same resolution."""
    torch.manual_seed(0)
    sp = spaces.get("pooling")
    net = sp.supernet(num_classes=3)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 0])
    archs = [sp.parse(a) for a in ("[1,1,8]", "[8,1,1]", "[4,3,3]")]
    res = I.measure(net, (x, y), archs, sp)
    assert res.scope == "auto" and res.in_scope().all()  # no searched op: every group
    assert (res.shared_groups()[~np.eye(3, dtype=bool)] == len(res.groups)).all()
    assert res.distance[0, 1] == sp.distance(archs[0], archs[1]) == 7 + 7  # poolings before layers 1, 2 vs 8, 9
    params = list(net.parameters())
    names = [n for n, _ in net.named_parameters()]

    def layer_grad(arch, prefix):
        g = torch.autograd.grad(torch.nn.functional.cross_entropy(net(x, arch), y), params)
        return np.concatenate([t.double().numpy().ravel() for n, t in zip(names, g) if n.startswith(prefix + ".")])

    for layer in ("layers.0", "layers.4", "classifier"):
        want = _cos(layer_grad(archs[0], layer), layer_grad(archs[1], layer))
        assert res.layer_cosine()[layer][0, 1] == pytest.approx(want, abs=1e-9)
    split = I.resolution_split(res.pairs(), sp).set_index("layer")
    # the stem runs at full resolution in every child: never a differing pair there
    assert split.loc["layers.0", "differ_pairs"] == 0 and split.loc["layers.0", "same_pairs"] == 3
    lv = {str(a): sp.levels(a) for a in archs}
    n_differ = sum(lv[str(a)][5] != lv[str(b)][5] for a, b in itertools.combinations(archs, 2))
    assert split.loc["layers.5", "differ_pairs"] == n_differ


def test_mixture_children_on_different_models_share_nothing():
    from nasbench_lab.training.samplers.mixture import MixtureSupernet

    torch.manual_seed(0)
    sp = spaces.get("pooling")
    routes = {"[4,3,3]": 0, "[3,3,4]": 0, "[1,1,8]": 1}
    net = MixtureSupernet(sp.supernet(num_classes=3), 2, router=lambda a: routes[str(a)])
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 0])
    res = I.measure(net, (x, y), [sp.parse(a) for a in routes], sp)
    assert {g.layer for g in res.groups} == {f"layers.{i}" for i in range(10)} | {"classifier"}
    assert np.isfinite(res.cosine[0, 1]) and np.isnan(res.cosine[0, 2]) and np.isnan(res.cosine[1, 2])


def test_ladders_cover_every_distance():
    sp = spaces.get("nb201")
    archs = I.spread_archs(sp, 14, seed=0)
    assert len(set(archs)) == 14
    d = {sp.distance(a, b) for a, b in itertools.combinations(archs, 2)}
    assert set(range(1, 7)) <= d


def test_bad_input_is_named():
    sp = spaces.get("nb201")
    net = sp.supernet(num_classes=2)
    batch = (torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="scope"):
        I.measure(net, batch, [sp.default], sp, scope="ops")
    with pytest.raises(ValueError, match="archs"):
        I.measure(net, batch, "[4,3,3]", sp)
    with pytest.raises(ValueError, match="nb201"):
        I.measure(net, batch, ["[4,3,3]"], sp)


def test_cli_prints_tables_and_writes_one_row_per_pair(tmp_path, capsys):
    out = tmp_path / "pairs.csv"
    code = main(["interference", "--space", "pooling", "--dataset", "digits", "--steps", "2", "--archs", "4",
                 "--images", "16", "--batch-size", "16", "--csv", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "cosine vs distance" in text and "per layer" in text and "same vs different resolutions" in text
    df = pd.read_csv(out)
    assert len(df) == 6 and {"a", "b", "distance", "cosine", "cos:layers.3"} <= set(df.columns)
    sp = spaces.get("pooling")
    assert (df["distance"] == [sp.distance(a, b) for a, b in zip(df["a"], df["b"])]).all()
    assert df["cosine"].between(-1, 1).all()
    with pytest.raises(SystemExit):  # argparse: the flag named, exit 2
        main(["interference", "--archs", "0"])
    assert "--archs: expected a positive integer" in capsys.readouterr().err


def test_live_ladders_only_hold_children_with_weights_on_a_live_path():
    sp = spaces.get("nb201")
    archs = I.spread_archs(sp, 12, seed=0, live_only=True)
    assert len(archs) == 12 and all(I.carries_weights(sp, a) for a in archs)
    # node 2 feeds nothing (edge 3<-2 is none): its convolutions are dead, the skip 0->3 carries no weight
    dead = sp.parse("|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|")
    assert not I.carries_weights(sp, dead)
    assert I.carries_weights(spaces.get("pooling"), spaces.get("pooling").default)


def test_dashboard_draws_each_measurement_and_a_click_shows_the_pair():
    """The run emits "interference" events every k steps; the dashboard draws the latest in place;
    a click on a matrix cell (as the browser sends it) shows the two children with their numbers."""
    from nasbench_lab.runs import Run
    from nasbench_lab.training import Trainer
    from nasbench_lab.widgets import RunDashboard

    job = Trainer(space="pooling", dataset="digits", steps=4, batch_size=8, rank_at_end=False,
                  interference_every=2, interference_archs=3, interference_images=8)
    run = Run(job)
    dash = RunDashboard(run, auto_refresh=False)
    run.start()
    assert run.wait(timeout=600) == "finished", run.error
    events = run.events.since(0, kinds="interference")
    assert [e.step for e in events] == [2, 4] and len(job.interference.history) == 2
    dash.refresh(force_slow=True)
    panel = dash.interference
    assert panel.updates == 1 and "step 4" in panel.fig.layout.title.text  # the newest one
    data = events[-1].data
    # the per-layer bars: CSS colours on the cosine scale (red pulls apart, blue agrees), not numbers
    layers = next(t for t in panel.fig.data if t.meta and t.meta.get("role") == "layers")
    for v, c in zip(data["layers"]["mean"], layers.marker.color):
        r, _, b = (int(x) for x in c[4:-1].split(","))
        assert (b > r) if v > 0.05 else (r > b) if v < -0.05 else True, (v, c)
    labels = list(panel.fig.data[0].x)
    panel.fig.click(labels[-1], labels[0])  # the top row, the last column
    i, j = int(labels[0][1:]), int(labels[-1][1:])
    want = data["cosine"][i][j]
    assert f"#{i}</b> vs <b>#{j}</b>: distance {data['distance'][i][j]}, cosine <b>{want:+.3f}" in panel.pair_text.value
    assert panel.left.layout.title.text.startswith(f"child #{i}") and panel.right.layout.title.text.startswith(f"child #{j}")
    # the pick box: a bad architecture is named inline, two good ones are measured next
    assert not panel.use_pick("[4,3]") and "pooling" in panel.message.value
    assert panel.use_pick("[4,3,3]\n[1,1,8]") and job.interference.archs() == (["[4,3,3]", "[1,1,8]"], "your pick")
    dash.close()
