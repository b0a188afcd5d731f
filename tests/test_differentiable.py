"""Differentiable NAS: hypergradient, eigenvalue monitor, mixing weights, derivation, the trainer
(every method, checkpoint/resume, live controls, collapse alarms) and the alpha views.

Networks are tiny (NB-201 with C=4 and one cell per stage, batch 8) so the file runs on two busy
CPU cores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nasbench_lab import data as data_mod
from nasbench_lab import spaces
from nasbench_lab.differentiable import METHODS, DifferentiableTrainer, build, relaxations
from nasbench_lab.differentiable.monitors import (
    DartsES,
    edge_entropy,
    edge_margin,
    hessian_eigenvalue,
    hessian_top_eigen,
    lanczos,
    power_iteration,
    unrolled_arch_grads,
)
from nasbench_lab.runs import Job, Run

TINY = dict(space="nb201", channels=4, cells=1, batch_size=8, hessian_every=0, device="cpu")
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module")
def digits():
    return data_mod.get("digits", seed=0)


def tiny(method: str, digits, steps: int = 3, **kw) -> DifferentiableTrainer:
    return DifferentiableTrainer(data=digits, **{**TINY, "method": method, "steps": steps, **kw})


# ----------------------------------------------------------------------------- maths
def _toy():
    """A two-op mixture ``p0 * X W1 + p1 * tanh(X W2)`` with softmax weights p = softmax(alpha)."""
    g = torch.Generator().manual_seed(0)
    X, Xv = torch.randn(16, 4, generator=g, dtype=torch.float64), torch.randn(16, 4, generator=g, dtype=torch.float64)
    y, yv = torch.randint(0, 3, (16,), generator=g), torch.randint(0, 3, (16,), generator=g)
    W = [torch.randn(4, 3, generator=g, dtype=torch.float64).requires_grad_() for _ in range(2)]
    alpha = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)

    def loss(x, t, ws, a):
        p = F.softmax(a, dim=0)
        return F.cross_entropy(p[0] * x @ ws[0] + p[1] * torch.tanh(x @ ws[1]), t)

    return X, y, Xv, yv, W, alpha, loss


def test_second_order_hypergradient_matches_finite_differences():
    X, y, Xv, yv, W, alpha, loss = _toy()
    xi = 0.5

    def unrolled_val(a: torch.Tensor) -> torch.Tensor:  # L_val(w - xi grad_w L_train(w, a), a), exactly
        g = torch.autograd.grad(loss(X, y, W, a), W)
        return loss(Xv, yv, [w - xi * gi for w, gi in zip(W, g)], a)

    h = 1e-5
    numeric = torch.zeros(2, dtype=torch.float64)
    for i in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[i] = h
        numeric[i] = (unrolled_val(alpha.detach() + e) - unrolled_val(alpha.detach() - e)) / (2 * h)
    before = [w.detach().clone() for w in W]
    grads, lv = unrolled_arch_grads(lambda: loss(X, y, W, alpha), lambda: loss(Xv, yv, W, alpha), W, [alpha], xi)
    assert all(torch.equal(w, b) for w, b in zip(W, before))  # weights restored exactly
    assert torch.allclose(grads[0], numeric, rtol=1e-4, atol=1e-8)
    assert float(lv) == pytest.approx(float(unrolled_val(alpha.detach()).detach()), rel=1e-12)
    # the second-order term matters here: the first-order gradient at w' is measurably different
    w_prime = [w - xi * g for w, g in zip(W, torch.autograd.grad(loss(X, y, W, alpha), W))]
    first = torch.autograd.grad(loss(Xv, yv, [w.detach() for w in w_prime], alpha), alpha)[0]
    assert (first - numeric).abs().max() > 100 * (grads[0] - numeric).abs().max()


def test_lanczos_finds_the_largest_algebraic_eigenvalue_where_power_iteration_finds_the_largest_magnitude():
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    for eigs in ([4.0, -1.0, 0.5, 2.0, 0.1], [-5.0, 1.0, 2.0, 0.3, -0.2]):
        A = q @ torch.diag(torch.tensor(eigs, dtype=torch.float64)) @ q.T
        x1 = torch.randn(2, dtype=torch.float64, requires_grad=True)
        x2 = torch.randn(3, dtype=torch.float64, requires_grad=True)

        def quad(A=A, x1=x1, x2=x2):
            x = torch.cat([x1, x2])
            return 0.5 * x @ A @ x + x.sum()  # the linear term does not change the Hessian

        lam = hessian_eigenvalue(quad, [x1, x2], iters=5, tol=1e-12, generator=torch.Generator().manual_seed(0))
        assert lam == pytest.approx(max(eigs), rel=1e-9)  # 4.0, then 2.0 although -5.0 dominates in magnitude
        top = hessian_top_eigen(quad, [x1, x2], iters=5, tol=1e-12)
        v = torch.from_numpy(top.vector)
        assert torch.allclose(A @ v, max(eigs) * v, atol=1e-9) and top.matvecs <= 5
        magnitude = max(eigs, key=abs)
        assert power_iteration(A.__matmul__, 5, iters=300, tol=1e-12, dtype=torch.float64) == pytest.approx(magnitude,
                                                                                                          rel=1e-6)
    lin = torch.zeros(3, requires_grad=True)
    assert hessian_eigenvalue(lambda: (2 * lin).sum(), [lin]) == 0.0


def test_lanczos_warm_start_projection_and_budget():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    eigs = np.array([3.0, -7.0, 1.0, 0.5, -2.0, 0.2, 2.5, -0.1, 0.0, 0.0, 0.0, 0.0])
    A = q @ np.diag(eigs) @ q.T
    calls = []

    def matvec(v):
        calls.append(1)
        return A @ v

    exact = lanczos(matvec, 12, iters=12, tol=1e-12)
    assert exact.value == pytest.approx(3.0, abs=1e-10) and exact.residual < 1e-8
    # started from its own eigenvector, one product settles it
    calls.clear()
    warm = lanczos(matvec, 12, iters=8, tol=1e-8, v0=exact.vector)
    assert warm.value == pytest.approx(3.0, abs=1e-10) and warm.matvecs == len(calls) == 1
    # the budget caps the products and the Ritz value is a lower bound of the largest eigenvalue
    calls.clear()
    short = lanczos(matvec, 12, iters=3, tol=1e-12)
    assert len(calls) == short.matvecs == 3 and short.value <= 3.0 + 1e-12
    # projecting out a known null space (the last 4 eigenvectors) leaves a Krylov space of 8
    null = q[:, 8:]

    def project(v):
        return v - null @ (null.T @ v)

    proj = lanczos(matvec, 12, iters=12, tol=1e-12, project=project)
    assert proj.value == pytest.approx(3.0, abs=1e-10) and proj.matvecs <= 8
    with pytest.raises(ValueError, match="iters"):
        lanczos(matvec, 12, iters=0)


def test_darts_es_local_averages_and_stop_rule_by_hand():
    es = DartsES(every=10, start=40, window=5, delta=4, factor=1.3)
    values = [1.0] * 8 + [2.0] * 4
    steps = [10 * (i + 1) for i in range(len(values))]
    # local averages from the 3rd measurement on: means of the last <= 5 values
    assert es.local_averages(values) == pytest.approx([1, 1, 1, 1, 1, 1, 1.2, 1.4, 1.6, 1.8])
    fired = [n for n in range(1, len(values) + 1) if es.check(steps[:n], values[:n])]
    # measurement 10 (step 100): centre step 80, compared with step 40 = start; 1.4 / 1.0 > 1.3
    assert fired[0] == 10
    hit = es.check(steps[:10], values[:10])
    assert hit == {"current": pytest.approx(1.4), "previous": pytest.approx(1.0), "ratio": pytest.approx(1.4),
                   "centre_step": 80, "stop_step": 40}
    # measurement 9 (ratio 1.2) would compare with step 30 < start anyway; a later start delays it
    assert es.check(steps[:9], values[:9]) is None
    late = DartsES(every=10, start=50)
    assert late.check(steps[:10], values[:10]) is None and late.check(steps[:11], values[:11])["stop_step"] == 50
    assert DartsES(every=10, start=0, factor=1.5).check(steps[:10], values[:10]) is None  # 1.4 < 1.5
    assert DartsES(every=10, start=0).check(steps[:10], [-1.0] * 8 + [2.0] * 2) is None  # no ratio of negatives
    with pytest.raises(ValueError, match="factor"):
        DartsES(every=10, start=0, factor=1.0)


def test_entropy_and_margin_of_edge_weights():
    w = np.array([[0.2] * 5, [1.0, 0, 0, 0, 0], [0.5, 0.3, 0.2, 0, 0]])
    assert edge_entropy(w) == pytest.approx([np.log(5), 0.0, -(0.5 * np.log(0.5) + 0.3 * np.log(0.3) + 0.2 * np.log(0.2))])
    assert edge_margin(w) == pytest.approx([0.0, 1.0, 0.2])


# ----------------------------------------------------------------------------- mixing weights
def test_softmax_and_sigmoid_weights(digits):
    soft = tiny("darts", digits)
    w, idx = soft._mix()
    assert idx is None and w["cell"].shape == (6, 5)
    assert torch.allclose(w["cell"].sum(-1), torch.ones(6))
    fair = tiny("fairdarts", digits)
    # the FairDARTS reference has no "none" op and starts every sigmoid at 0.5
    assert fair.net.op_names == ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert torch.equal(fair.alphas["cell"], torch.zeros(6, 4))
    with torch.no_grad():
        fair.alphas["cell"].copy_(torch.linspace(-3, 3, 24).reshape(6, 4))
    s = fair._mix()[0]["cell"]
    assert s.shape == (6, 4) and ((s > 0) & (s < 1)).all()
    assert torch.allclose(s, torch.sigmoid(fair.alphas["cell"]))
    assert not torch.allclose(s.sum(-1), torch.ones(6))  # independent per op: no competition


def test_fairdarts_derives_with_the_sigmoid_threshold_and_never_from_a_none_weight(digits):
    fair = tiny("fairdarts", digits)
    ops = fair.net.op_names  # skip, 1x1, 3x3, avg
    sig = np.full((6, 4), 0.1)
    sig[0, 2] = 0.9    # 3x3 above the threshold 0.85
    sig[1, 0] = 0.95   # skip above
    sig[2, 1] = 0.84   # best op below the threshold: the edge is dropped (none)
    sig[3, 3] = 0.99   # avg pool
    sig[4] = [0.2, 0.86, 0.87, 0.1]  # 3x3 by a hair
    # edge 5: everything at 0.1 -> none
    arch, details = fair.relax.derive({"cell": sig}, ops=ops, threshold=0.85)
    assert str(arch) == "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|"
    assert details["skip_margins"] == pytest.approx([(0.95 - 0.1) / 1.25])
    # the trainer's own derivation uses the threshold too; DARTS' argmax rule would pick edge 2's 1x1
    with torch.no_grad():
        fair.alphas["cell"].copy_(torch.logit(torch.tensor(sig)).float())
    assert fair.derive()[0] == arch
    assert str(fair.relax.derive({"cell": sig}, ops=ops)[0]).count("none") == 0


def test_gumbel_hard_samples_are_one_hot_with_softmax_frequencies_and_straight_through_gradients(digits):
    job = tiny("gdas", digits)
    target = torch.tensor([0.0, 0.0, 1.5, 0.5, -1.0])
    with torch.no_grad():
        job.alphas["cell"].copy_(target.expand(6, 5))
    w, idx = job._mix()
    hard = w["cell"]
    assert hard.shape == (6, 5)
    assert torch.allclose(hard.sum(-1), torch.ones(6))
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}
    assert idx["cell"] == hard.detach().argmax(-1).tolist()
    (hard * torch.arange(5.0)).sum().backward()
    assert (job.alphas["cell"].grad != 0).all()  # straight-through: every logit gets a gradient
    # Gumbel-max: the sampled op is distributed as softmax(alpha), whatever the temperature
    job.set_temperature(0.5)
    counts = np.zeros(5)
    with torch.no_grad():
        for _ in range(300):
            for k in job._mix(detach=True)[1]["cell"]:
                counts[k] += 1
    freq = counts / counts.sum()
    assert np.abs(freq - F.softmax(target, 0).numpy()).max() < 0.03


def test_gdas_passes_the_straight_through_gradient_to_every_op_of_the_edge():
    """GDAS' reference (forward_gdas) adds the unselected hard weights to the edge's output:
    0 in value, so the forward is the selected op alone, but dL/dw_k = sum(dL/d out) for every
    unselected k, which then reaches every logit through the straight-through softmax."""
    from nasbench_lab.nn.ops import make_op
    from nasbench_lab.spaces.darts import MixedOp
    from nasbench_lab.spaces.nb201 import OPS

    torch.manual_seed(0)
    edge = MixedOp(OPS, 2, 1, builder=lambda name, c, s: make_op(name, c, c, s, affine=False))
    x = torch.randn(3, 2, 4, 4)
    upstream = torch.randn(3, 2, 4, 4)
    w = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0], requires_grad=True)  # hard sample: op 2 (1x1 conv)
    out = edge(x, w, index=2)
    assert torch.allclose(out, edge.ops[2](x))
    (out * upstream).sum().backward()
    expected = torch.full((5,), float(upstream.sum()))
    expected[2] = float((edge.ops[2](x) * upstream).sum().detach())
    assert torch.allclose(w.grad, expected, rtol=1e-5, atol=1e-5)


def test_pcdarts_warms_the_weights_up_for_30_percent_of_the_budget(digits):
    job = tiny("pcdarts", digits, steps=10, arch_lr=0.05)
    assert job.cfg.warmup_steps == 3 and job.alarm_after == 3
    a0 = job.alphas["cell"].detach().clone()
    for _ in range(3):
        job.step()
    assert torch.equal(job.alphas["cell"], a0)  # weight-only steps
    job.step()
    assert not torch.equal(job.alphas["cell"], a0)
    assert tiny("pcdarts", digits, steps=10, warmup_steps=0).cfg.warmup_steps == 0  # explicit values win
    assert tiny("darts", digits, steps=10).cfg.warmup_steps == 0


def test_each_method_runs_with_its_published_settings_unless_told_otherwise(digits):
    """PC-DARTS (Xu et al. 2020): batch 256, lr 0.1, arch lr 6e-4, 15 warm-up epochs of 50; GDAS
    (Dong & Yang 2019): weights first, 240 epochs; FairDARTS' reference: batch 128, lr 0.005,
    arch lr 3e-3, Adam betas (0.9, 0.999); DARTS: 64, 0.025, 3e-4, (0.5, 0.999)."""
    base = dict(space="nb201", channels=4, cells=1, hessian_every=0, device="cpu", steps=100)
    expect = {"pcdarts": (256, 0.1, 6e-4, (0.5, 0.999), 50, False, 30),
              "darts": (64, 0.025, 3e-4, (0.5, 0.999), 50, False, 0),
              "gdas": (64, 0.025, 3e-4, (0.5, 0.999), 240, True, 0),
              "fairdarts": (128, 0.005, 3e-3, (0.9, 0.999), 50, False, 0),
              "gaea": (64, 0.025, 0.1, (0.5, 0.999), 50, False, 0)}
    for method, (bs, lr, alr, betas, epochs, first, warm) in expect.items():
        job = DifferentiableTrainer(data=digits, method=method, **base)
        c = job.cfg
        assert (c.batch_size, c.lr, c.arch_lr, c.arch_betas, c.warmup_steps) == (bs, lr, alr, betas, warm), method
        assert (c.epochs, c.weight_first) == (epochs, first), method
        assert job.optimizer.param_groups[0]["lr"] == lr and job.arch_optimizer.param_groups[0]["lr"] == alr
        assert job.train_stream.bs == bs and job.config()["batch_size"] == bs  # stored resolved, with the run
        if method != "gaea":
            assert job.arch_optimizer.param_groups[0]["betas"] == betas
    # a value given wins over the published one
    job = DifferentiableTrainer(data=digits, method="pcdarts", batch_size=8, lr=0.05, arch_lr=1e-3, epochs=100,
                                **base)
    assert (job.cfg.batch_size, job.cfg.lr, job.cfg.arch_lr, job.cfg.warmup_steps) == (8, 0.05, 1e-3, 15)
    with pytest.raises(ValueError, match="epochs"):  # 15 warm-up epochs cannot fit in 10
        DifferentiableTrainer(data=digits, method="pcdarts", epochs=10, **base)
    with pytest.raises(ValueError, match="batch_size"):
        DifferentiableTrainer(data=digits, method="darts", batch_size=0, **base)
    # the docs table says the same
    from pathlib import Path

    table = (Path(__file__).resolve().parent.parent / "docs" / "differentiable.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): line for line in table.splitlines() if line.startswith("| `")}
    for method, (bs, lr, alr, *_rest) in expect.items():
        cells = [x.strip() for x in rows[method].split("|")]
        assert cells[2:5] == [str(bs), f"{lr:g}", f"{alr:g}"], method


def test_gdas_updates_the_weights_first_and_its_schedules_step_per_epoch(digits):
    """GDAS' reference updates the weights, then the alphas, and sets tau once per epoch
    (``tau_max - (tau_max - tau_min) * e / (E - 1)``); DARTS- decays its auxiliary weight per epoch
    (``1 - e / E``); a run's steps stand for the paper's epochs (DARTS-: 50, GDAS: 240)."""
    order = {}
    for method in ("gdas", "darts"):
        job = tiny(method, digits, steps=4)
        calls: list[str] = []
        for name, opt in (("w", job.optimizer), ("alpha", job.arch_optimizer)):
            opt.register_step_post_hook(lambda *_, _n=name, _c=calls: _c.append(_n))
        job.step()
        order[method] = calls
    assert order == {"gdas": ["w", "alpha"], "darts": ["alpha", "w"]}
    job = tiny("gdas", digits, steps=480)  # 2 steps per epoch of 240
    taus = []
    for t in (0, 1, 2, 3, 478, 479):
        job.step_count = t
        taus.append(job.temperature)
    assert taus == pytest.approx([10.0, 10.0, 10 - 9.9 / 239, 10 - 9.9 / 239, 0.1, 0.1])
    assert job.epoch(478) == 239 and job.run_epochs == 240
    short = tiny("gdas", digits, steps=3)  # fewer steps than epochs: one epoch per step, ending at tau_min
    assert [short.epoch(t) for t in range(3)] == [0, 1, 2]
    minus = tiny("darts-minus", digits, steps=100)
    betas = []
    for t in (0, 1, 2, 99):
        minus.step_count = t
        betas.append(minus.aux_weight)
    assert betas == pytest.approx([1.0, 1.0, 0.98, 0.02])


# ----------------------------------------------------------------------------- derivation
def test_darts_derivation_keeps_the_two_strongest_inputs_and_never_none():
    relax = relaxations.get("darts")
    rng = np.random.default_rng(0)
    w = {g: rng.uniform(0.0, 0.1, size=(14, 8)) for g in ("normal", "reduce")}
    for g in w:
        w[g][:, 0] = 1.0  # "none" is the largest weight everywhere: it must still never be picked
    # node 5 (edges from 0..4 are 9..13): inputs 3 and 1 strongest, via sep_conv_5x5 and skip_connect
    w["normal"][9 + 3, 5] = 0.9
    w["normal"][9 + 1, 3] = 0.8
    w["normal"][9 + 4, 4] = 0.7
    arch, details = relax.derive(w)
    genes = arch.genes
    for c in range(2):
        for i in range(4):
            a, oa, b, ob = genes[16 * c + 4 * i:16 * c + 4 * i + 4]
            assert a < b <= i + 1 and oa != 0 and ob != 0
    assert genes[12:16] == (1, 3, 3, 5)  # ('skip_connect', 1), ('sep_conv_5x5', 3)
    assert details["skip_count"] == relax.space.skip_count(arch)
    # PC-DARTS edge weights re-rank the inputs: halve edge 3->5 and input 4 takes its place
    ew = {g: np.ones(14) for g in w}
    ew["normal"][9 + 3] = 0.5
    assert relax.derive(w, ew)[0].genes[12:16] == (1, 3, 4, 4)


def test_nb201_derivation_is_argmax_over_all_ops_including_none():
    relax = relaxations.get("nb201")
    w = np.full((6, 5), 0.1)
    w[np.arange(6), [0, 1, 3, 1, 2, 4]] = 0.6
    arch, details = relax.derive({"cell": w})
    assert str(arch) == "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    assert details["skip_count"] == 2 and relax.skip_threshold == 3


def test_pooling_derivation_projects_per_layer_argmax_onto_the_most_likely_valid_layout():
    relax = relaxations.get("pooling")
    levels = [0, 0, 0, 1, 1, 1, 2, 2, 2]  # blocks 1..9 of [4,3,3]
    w = np.full((9, 3), 0.1)
    w[np.arange(9), levels] = 0.8
    assert str(relax.derive({"layers": w})[0]) == "[4,3,3]"
    w[1] = [0.1, 0.1, 0.8]  # block2 wants 8x8 (non-monotone, outside the space)
    arch, details = relax.derive({"layers": w})
    assert details["levels"][:4] == [0, 0, 2, 0]
    assert str(arch) == "[4,3,3]"  # one unlikely layer does not move the poolings


# ----------------------------------------------------------------------------- relaxed networks
def test_relaxed_networks_with_one_hot_weights_equal_their_single_path(digits):
    torch.manual_seed(0)
    x = digits.train_x[:4]
    nb = relaxations.get("nb201").build(10, 4, 1, 1, False)
    arch = spaces.get("nb201").parse("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|")
    onehot = F.one_hot(torch.tensor(arch.genes), 5).float()
    assert torch.allclose(nb(x, weights={"cell": onehot}), nb(x, arch), atol=1e-5)
    # pooling: downsample-compute-upsample per layer = the plain network with the poolings placed
    pool = relaxations.get("pooling").build(10, None, None, 1, False)
    layout = spaces.get("pooling").parse("[3,4,3]")
    lv = spaces.get("pooling").levels(layout)[1:]
    relaxed = pool(x[:2], weights={"layers": F.one_hot(torch.tensor(lv), 3).float()})
    assert torch.allclose(relaxed, pool(x[:2], layout), atol=1e-4)


# ----------------------------------------------------------------------------- the trainer
@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_a_few_steps_on_nb201(method, digits):
    job = tiny(method, digits, steps=3, arch_lr=0.05 if method != "gaea" else 0.5)
    a0 = job.alphas["cell"].detach().clone()
    rows = [job.step() for _ in range(3)]
    assert job.step_count == 3 and not torch.equal(a0, job.alphas["cell"])
    for r in rows:
        assert np.isfinite(r["loss"]) and np.isfinite(r["val_loss"]) and 0 <= r["reward"] <= 1
        spaces.get("nb201").parse(r["arch"])
        assert 0 <= r["skip_count"] <= 6 and 0 < r["table_acc"] < 100
    if method == "gdas":
        assert rows[0]["temperature"] == pytest.approx(10.0) and rows[-1]["temperature"] == pytest.approx(0.1)
    if method == "darts-minus":
        assert [r["aux_skip"] for r in rows] == pytest.approx([1.0, 2 / 3, 1 / 3])
    if method == "pcdarts":
        ew = job.edge_weights()["cell"]
        assert ew[0] == pytest.approx(1.0) and ew[1:3].sum() == pytest.approx(1.0) and ew[3:].sum() == pytest.approx(1.0)
    if method == "gaea":  # exponentiated gradient: p_new is proportional to p_old * exp(-eta * grad_p)
        assert job.arch_optimizer.__class__.__name__ == "SGD"
    summary = job.finish()
    assert summary["arch"] == rows[-1]["arch"] and summary["steps"] == 3
    json.dumps(job.snapshot())  # plain data for the store


@pytest.mark.parametrize("space, method", [("darts", "pcdarts"), ("pooling", "darts")])
def test_darts_cells_and_pooling_relaxation_train(space, method, digits):
    job = DifferentiableTrainer(data=digits, space=space, method=method, steps=1, channels=4, cells=3,
                                batch_size=2, hessian_every=0, device="cpu", arch_lr=0.05, warmup_steps=0)
    before = {g: a.detach().clone() for g, a in job.alphas.items()}
    row = job.step()
    assert all(not torch.equal(before[g], job.alphas[g]) for g in before)
    arch = spaces.get(space).parse(row["arch"])
    if space == "darts":
        assert set(job.groups) == {"normal", "reduce"} and job.alphas["normal"].shape == (14, 8)
        assert row["skip_count"] == spaces.get("darts").skip_count(arch)
    else:
        assert job.alphas["layers"].shape == (9, 3) and "skip_count" not in row
        assert row["table_acc"] == pytest.approx(job.benchmark.query(arch))


def test_build_validates_its_arguments():
    with pytest.raises(ValueError, match="valid: darts, darts2"):
        build("enas")
    with pytest.raises(ValueError, match="pcdarts"):
        build("pcdarts", space="pooling", steps=1)
    with pytest.raises(ValueError, match="unknown option"):
        build("darts", steps=1, arch_learning_rate=1.0)
    with pytest.raises(ValueError, match="no differentiable relaxation"):
        build("darts", space="nbmacro", steps=1)
    with pytest.raises(ValueError, match="steps"):
        build("darts", steps=0)


def test_method_options_and_the_lead_s_build_job(digits):
    from nasbench_lab import methods

    job = methods.build_job("gdas", space="nb201", steps=2, seed=1, channels=4, cells=1, batch_size=8,
                            device="cpu", method_options={"arch_lr": 0.01, "tau_max": 5.0})
    assert isinstance(job, DifferentiableTrainer)
    assert job.cfg.arch_lr == 0.01 and job.temperature == 5.0 and job.method == "gdas"
    assert job.config()["method_options"] == {}


def _run_steps(run: Run, n: int) -> None:
    run.step(n, timeout=300)
    assert run.error is None, run.traceback


def test_checkpoint_resume_continues_alphas_and_their_optimizer_identically(digits, tmp_path):
    cfg = {**TINY, "method": "gdas", "steps": 4, "arch_lr": 0.05, "seed": 3}
    straight = DifferentiableTrainer(**cfg)  # data from the config, as a resumed run loads it
    for _ in range(4):
        straight.step()
    job = DifferentiableTrainer(**cfg)
    run = Run(job, store=False, checkpoint_every=2, checkpoint_dir=tmp_path)
    _run_steps(run, 2)
    run.stop()
    resumed = Run.resume(run.checkpoint_path, store=False)
    assert resumed.job.step_count == 2
    _run_steps(resumed, 2)
    resumed.stop()
    assert torch.equal(resumed.job.alphas["cell"], straight.alphas["cell"])
    st_a, st_b = resumed.job.arch_optimizer.state_dict()["state"][0], straight.arch_optimizer.state_dict()["state"][0]
    assert torch.equal(st_a["exp_avg"], st_b["exp_avg"]) and torch.equal(st_a["exp_avg_sq"], st_b["exp_avg_sq"])
    assert resumed.job.hist["step"] == [1, 2, 3, 4]
    assert resumed.job.snapshot()["arch"] == straight.snapshot()["arch"]


def test_arch_lr_and_temperature_changed_while_paused_take_effect_and_are_checkpointed(digits, tmp_path):
    job = tiny("gdas", digits, steps=6)
    run = Run(job, store=False, checkpoint_dir=tmp_path)
    _run_steps(run, 2)
    a2 = job.alphas["cell"].detach().clone()
    assert run.status == "paused"
    job.set_arch_lr(0.05)
    job.set_temperature(0.5)
    _run_steps(run, 1)
    step3 = [e.data for e in run.events.since(0, kinds=["step"])][-1]
    assert step3["arch_lr"] == 0.05 and step3["temperature"] == 0.5
    assert (job.alphas["cell"] - a2).abs().max() > 0.01  # Adam moves ~lr per step: 0.05, not 3e-4
    path = run.checkpoint()
    run.stop()
    back = Run.resume(path, store=False)
    assert back.job.arch_optimizer.param_groups[0]["lr"] == 0.05 and back.job.temperature == 0.5
    back.job.set_temperature(None)  # back on the schedule: 10 -> 0.1 over 6 steps, at step 4
    assert back.job.temperature == pytest.approx(10 - 9.9 * 3 / 5)
    with pytest.raises(ValueError, match="GDAS"):
        tiny("darts", digits).set_temperature(1.0)
    with pytest.raises(ValueError, match="set_arch_lr"):
        job.set_arch_lr(-1)


def test_collapse_onto_skip_raises_the_alarm_and_stops_the_run(digits):
    job = tiny("darts", digits, steps=20, stop_on_alarm=True, alarm_after=0)
    with torch.no_grad():
        job.alphas["cell"][:, 1] = 3.0  # skip_connect dominates every edge
    run = Run(job)
    run.start()
    assert run.wait(timeout=300) == "finished", run.traceback
    alarms = run.events.since(0, kinds=["alarm"])
    assert len(alarms) == 1 and alarms[0].step == 1
    assert alarms[0].data["rule"] == "skip" and alarms[0].data["value"] == 6 and alarms[0].data["threshold"] == 3
    assert run.summary["stopped_on_alarm"] == "skip" and run.summary["steps"] == 1
    assert run.summary["arch"] == ALL_SKIP and run.summary["table_acc"] == pytest.approx(54.30, abs=0.01)
    metrics = run.store.metrics(run.run_id)
    assert metrics["skip_count"].tolist() == [6] and metrics["table_acc"].iloc[0] == pytest.approx(54.30, abs=0.01)
    snap = run.store.snapshots(run.run_id)[-1]["data"]
    assert snap["panel"] == "nasbench_lab.viz.alphas:alpha_panel" and snap["alarms"][0]["rule"] == "skip"
    # the dashboard raises the banner from the alarm event
    from nasbench_lab.widgets import RunDashboard

    dash = RunDashboard(run, auto_refresh=False)
    assert dash.alarm.layout.display == "block"
    assert "Collapse alarm" in dash.alarm.value and "<b>skip</b> at step 1" in dash.alarm.value
    assert "6 decided skip connections in the cell (&gt;= 3" in dash.alarm.value


def test_a_derived_cell_cut_off_by_none_edges_raises_the_disconnected_alarm(digits):
    """DARTS on NB-201 also degrades to cells whose every path crosses ``none`` (10 %, the table's
    chance entry) with no skip edge and a flat eigenvalue; the "disconnected" rule names it."""
    job = tiny("darts", digits, steps=4, alarm_after=0)
    fired = []
    job.bind(lambda kind, step=None, **data: fired.append((kind, step, data)))
    job.step()
    assert fired == [] and job.space.ops_on_paths(job.derive()[0])  # the initial cell carries signal
    with torch.no_grad():
        job.alphas["cell"][[0, 1, 3], 0] = 3.0  # none on 1<-0, 2<-0 and 3<-0: node 0 reaches nothing
    job.step()
    arch = job.derive()[0]
    assert job.space.ops_on_paths(arch) == [] and job.table_accuracy(arch) == pytest.approx(10.0)
    assert [(k, s, d["rule"]) for k, s, d in fired] == [("alarm", 2, "disconnected")]
    job.step()  # still disconnected: no second alarm until it reconnects
    with torch.no_grad():
        job.alphas["cell"][3, 0] = -3.0
        job.alphas["cell"][3, 3] = 3.0  # 3<-0 becomes conv 3x3: connected again
    job.step()
    assert len(fired) == 1 and job.space.ops_on_paths(job.derive()[0])


def test_the_skip_rule_ignores_the_argmax_of_near_uniform_alphas(digits):
    """Issue 13: in CI mode the skip rule fired at step 1 while every weight was still 0.2. A skip
    edge now counts only once its weight leads the runner-up by skip_margin (0.05)."""
    job = tiny("darts", digits, steps=3, alarm_after=0)
    with torch.no_grad():
        job.alphas["cell"].zero_()
        job.alphas["cell"][:, 1] = 0.01  # skip is the argmax of every edge, by 0.002 in weight
    fired = []
    job.bind(lambda kind, step=None, **data: fired.append((kind, step, data)))
    row = job.step()
    assert row["skip_count"] == 6 and row["decided_skips"] == 0 and fired == []
    assert np.allclose(job.weights()["cell"], 0.2, atol=0.003)
    # the same cell with skip clearly ahead (softmax(1 vs 0) = 0.40 vs 0.15) is decided
    with torch.no_grad():
        job.alphas["cell"][:, 1] = 1.0
    row = job.step()
    assert row["decided_skips"] == 6 and [(k, d["rule"]) for k, _, d in fired] == [("alarm", "skip")]


def test_eigenvalue_alarm_fires_when_the_eigenvalue_grows_over_its_early_value(digits, monkeypatch):
    job = tiny("darts", digits, steps=5, hessian_every=1, alarm_after=0, alarm_rules=["eigenvalue"])
    values = iter([1.0, 1.1, 1.2, 1.4, 1.0])  # baseline = mean of the first two = 1.05
    monkeypatch.setattr(job, "eigenvalue", lambda: next(values))
    fired = []
    job.bind(lambda kind, step=None, **data: fired.append((kind, step, data)))
    rows = [job.step() for _ in range(5)]
    assert [r["eigenvalue"] for r in rows] == [1.0, 1.1, 1.2, 1.4, 1.0]
    assert [(k, s, d["rule"]) for k, s, d in fired] == [("alarm", 4, "eigenvalue")]
    assert fired[0][2]["threshold"] == pytest.approx(1.3 * 1.05)


def test_darts_es_alarm_stops_the_run_where_darts_es_would_and_keeps_the_earlier_architecture(digits, monkeypatch):
    # 718 training images at batch 8: 89.75 steps per epoch, so 0.034 epochs start DARTS-ES at step 3
    # (at this arch lr the cell also drifts to a disconnected one by step 9: that rule is tested apart)
    job = tiny("darts", digits, steps=14, hessian_every=1, alarm_after=0, stop_on_alarm=True, arch_lr=0.05,
               es_start_epoch=0.034, alarm_rules=("skip", "darts-es"))
    assert job.darts_es.start == 3
    assert tiny("darts", digits).cfg.alarm_rules == ("skip", "darts-es", "disconnected")
    assert tiny("darts", digits).darts_es.start == 898  # the default: 10 epochs
    values = iter([1.0] * 8 + [2.0] * 6)
    monkeypatch.setattr(job, "eigenvalue", lambda: next(values))
    run = Run(job, store=False)
    run.start()
    assert run.wait(timeout=300) == "finished", run.traceback
    alarms = run.events.since(0, kinds=["alarm"])
    # measurement 10 (step 10): local average 1.4 (mean of 1, 1, 1, 2, 2... the last five) against
    # the one 4 measurements earlier, 1.0, whose centre step 4 is past the start (step 3)
    assert [(a.step, a.data["rule"]) for a in alarms] == [(10, "darts-es")]
    a = alarms[0].data
    assert a["value"] == pytest.approx(1.4) and a["threshold"] == pytest.approx(1.3) and a["stop_step"] == 4
    assert a["stop_arch"] == job.arch_at(4) and "step 4" in a["message"]
    summary = run.summary
    assert summary["steps"] == 10 and summary["stopped_on_alarm"] == "darts-es"
    assert summary["es_step"] == 4 and summary["es_arch"] == job.arch_at(4)
    assert summary["es_table_acc"] == pytest.approx(job.benchmark.query(job.arch_at(4)))
    snap = job.snapshot()
    assert snap["eigen"]["local_avg"][-1] == pytest.approx(1.4) and snap["eigen"]["baseline"] is None


def test_monitor_eigenvalue_is_the_largest_algebraic_one_of_the_exact_hessian(digits):
    """Against the exact Hessian of a tiny supernet (torch.autograd.functional.hessian, a code path
    independent of the Lanczos iteration) at training points that include an early one where the
    eigenvalue of largest magnitude is negative (power iteration would report that one)."""
    from nasbench_lab.differentiable.trainer import frozen_bn

    job = tiny("darts", digits, steps=8, hessian_batch=8, arch_lr=0.05)
    negative_dominant = 0
    for t in range(8):
        job.step()
        if t not in (0, 7):
            continue
        xv, yv = job.data.val_x[:8], job.data.val_y[:8]

        def val_loss(a: torch.Tensor, xv=xv, yv=yv) -> torch.Tensor:
            return F.cross_entropy(job._forward(xv, {"cell": F.softmax(a, -1)}), yv)

        job.net.train()
        with frozen_bn(job.net):
            H = torch.autograd.functional.hessian(val_loss, job.alphas["cell"].detach().clone(), vectorize=True)
        # R-DARTS differentiates grad + arch_weight_decay * alpha: the Hessian gains wd on its diagonal
        ev = np.linalg.eigvalsh(H.reshape(30, 30).double().numpy()) + job.cfg.arch_weight_decay
        dominant = ev[np.argmax(np.abs(ev))]
        negative_dominant += dominant < 0
        if t == 7:  # the defaults (warm-started from step 1's vector, stopped by the residual) agree
            assert abs(job.eigenvalue() - ev[-1]) <= job._eig_residual + 1e-9
            assert job._eig_converged and 1 <= job._eig_matvecs < job.cfg.hessian_iters
        defaults = job.cfg.hessian_iters, job.cfg.hessian_tol
        job.cfg.hessian_iters, job.cfg.hessian_tol = 30, 1e-10  # enough for the whole Krylov space
        lam = job.eigenvalue()
        job.cfg.hessian_iters, job.cfg.hessian_tol = defaults
        assert lam == pytest.approx(ev[-1], rel=1e-4, abs=1e-7)
        assert job._eig_matvecs <= 24  # 6 directions (a constant per edge) are projected out
        if dominant < 0:
            assert lam > 0 > dominant
    assert negative_dominant >= 1


def test_monitor_eigenvalue_on_the_darts_space_matches_the_exact_hessian_of_224_alphas(digits, monkeypatch):
    """DARTS cells (2 x 14 edges x 8 ops = 224 alphas) at a small size (C=4, 3 cells, 8x8 images):
    the monitor stops on its residual criterion, below its cap, within that residual of the largest
    eigenvalue of the exact Hessian of the regularised loss (torch.func.hessian: forward-over-reverse
    AD and a dense eigendecomposition, independent of the Lanczos iteration). A capped measurement
    is recorded as unconverged."""
    import copy
    import dataclasses

    from nasbench_lab.nn import ops

    small = dataclasses.replace(digits, **{f"{s}_x": F.adaptive_avg_pool2d(getattr(digits, f"{s}_x"), 8)
                                           for s in ("train", "val", "test")})
    job = DifferentiableTrainer(data=small, space="darts", method="darts", steps=20, channels=4, cells=3,
                                batch_size=8, hessian_batch=4, hessian_every=0, device="cpu", arch_lr=0.05,
                                augment=False)
    for _ in range(4):
        job.step()
    lam = job.eigenvalue()
    assert job._eig_converged and job._eig_matvecs < job.cfg.hessian_iters
    # the exact Hessian, on a copy of the network: contiguous layout, BN on batch statistics with no
    # running ones (what frozen_bn computes), pooling through nn.MaxPool2d / AvgPool2d (same values)
    net = copy.deepcopy(job.net).to(memory_format=torch.contiguous_format)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.track_running_stats, m.running_mean, m.running_var, m.num_batches_tracked = False, None, None, None
    monkeypatch.setattr(ops.Pool, "forward", lambda self, x: self.pool(x if self.preprocess is None else self.preprocess(x)))
    xv, yv = job.data.val_x[:4].contiguous(), job.data.val_y[:4]
    shapes = {g: a.shape for g, a in job.alphas.items()}

    def val_loss(flat: torch.Tensor) -> torch.Tensor:
        w, pos = {}, 0
        for g, shp in shapes.items():
            w[g] = F.softmax(flat[pos:pos + shp.numel()].reshape(shp), dim=-1)
            pos += shp.numel()
        return F.cross_entropy(net(xv, weights=w), yv)

    flat = torch.cat([a.detach().reshape(-1) for a in job.alphas.values()])
    H = torch.func.hessian(val_loss)(flat).detach().double().numpy()
    assert H.shape == (224, 224) and np.allclose(H, H.T, atol=1e-5)
    ev = np.linalg.eigvalsh((H + H.T) / 2) + job.cfg.arch_weight_decay  # R-DARTS' regularised Hessian
    scale = np.abs(ev - job.cfg.arch_weight_decay).max()
    rounding = 1e-5 * scale  # float32 products
    assert lam <= ev[-1] + rounding  # a Ritz value never exceeds the largest eigenvalue
    assert ev[-1] - lam <= job._eig_residual + rounding
    assert job._eig_residual <= job.cfg.hessian_tol * scale
    # the cap: two products do not meet the criterion, and the measurement says so
    job.cfg.hessian_iters, job._eig_vec = 2, None
    job.cfg.hessian_every = job.hessian_every = 1
    job.step()
    assert job.eigen["matvecs"][-1] == 2 and job.eigen["converged"][-1] is False
    assert job.finish()["eig_unconverged"] == 1


def test_monitor_eigenvalue_is_the_weight_decay_when_every_projected_eigenvalue_is_negative(digits, monkeypatch):
    """The projected-out directions (a constant per edge) are exact null vectors of the softmax
    Hessian: H + wd I has the eigenvalue wd there, so a negative projected top cannot be the maximum."""
    from nasbench_lab.differentiable import trainer as trainer_mod
    from nasbench_lab.differentiable.monitors import TopEigen

    def negative(loss_fn, params, iters, tol, v0=None, project=None, rng=None):
        dim = sum(p.numel() for p in params)
        return TopEigen(-0.5, np.ones(dim) / np.sqrt(dim), 3, 1e-9)

    monkeypatch.setattr(trainer_mod, "hessian_top_eigen", negative)
    for method, expected in (("darts", 1e-3), ("gaea", 0.0), ("fairdarts", -0.5 + 1e-3)):
        # sigmoid weights (FairDARTS) have no null direction: their negative top is the maximum
        job = tiny(method, digits)
        assert job.eigenvalue() == pytest.approx(expected, abs=1e-12), method
    # the real case, exact: the null directions' eigenvalue 0 is in the full Hessian's spectrum
    job = tiny("darts", digits)
    monkeypatch.undo()
    job.step()
    from nasbench_lab.differentiable.trainer import frozen_bn

    xv, yv = job.data.val_x[:job.cfg.hessian_batch], job.data.val_y[:job.cfg.hessian_batch]
    job.net.train()
    with frozen_bn(job.net):
        H = torch.autograd.functional.hessian(lambda a: F.cross_entropy(job._forward(xv, {"cell": F.softmax(a, -1)}),
                                                                        yv), job.alphas["cell"].detach().clone(), vectorize=True)
    H = H.reshape(30, 30).double().numpy()
    ones = np.kron(np.eye(6), np.ones((1, 5))).T / np.sqrt(5)  # one constant direction per edge
    assert np.abs(H @ ones).max() < 1e-6


# ----------------------------------------------------------------------------- views
def test_alpha_panel_draws_trajectories_thresholds_and_the_alarm(digits):
    from nasbench_lab.viz.alphas import alpha_panel, alpha_trajectories, monitor_figure

    job = tiny("darts", digits, steps=3, alarm_after=0, arch_lr=0.05)
    with torch.no_grad():
        job.alphas["cell"][:, 1] = 3.0
    for _ in range(3):
        job.step()
    snap = json.loads(json.dumps(job.snapshot()))  # what the store hands back
    fig = alpha_panel(snap, None)
    alpha = [t for t in fig.data if (t.meta or {}).get("role") == "alpha"]
    assert len(alpha) == 6 * 5
    skip_line = next(t for t in alpha if t.meta["edge"] == 0 and t.meta["op"] == "skip_connect")
    assert list(skip_line.x) == [1, 2, 3] and min(skip_line.y) > 0.8  # softmax(3 vs 0) ~ 0.83
    thresholds = {t.meta["rule"]: t.meta["value"] for t in fig.data if (t.meta or {}).get("role") == "threshold"}
    assert thresholds == {"skip": 3, "all-skip": 54.30}
    assert [t.y for t in fig.data if (t.meta or {}).get("role") == "table_acc"][0] == pytest.approx([54.30] * 3, abs=0.01)
    assert any("collapse alarm at step 1" in (a.text or "") for a in fig.layout.annotations)
    assert any((t.meta or {}).get("role") == "edge" and t.meta.get("op") == "skip_connect" for t in fig.data)  # DAG
    assert len(alpha_trajectories(snap).data) == 30
    assert {(t.meta or {}).get("monitor") for t in monitor_figure(snap).data} >= {"eigenvalue"}  # not measured
    with pytest.raises(ValueError, match="snapshot"):
        alpha_panel({"step": 1}, None)


# ----------------------------------------------------------------------------- comparison, CLI, controls
def test_compare_runs_every_method_and_seed_and_the_cli_prints_the_table(tmp_path, capsys):
    import argparse

    from nasbench_lab.differentiable.compare import add_arguments, compare, main, summarize

    res = compare(["darts", "gdas"], seeds=[0, 1], steps=2, store=False, progress=False, **TINY)
    assert list(zip(res["method"], res["seed"])) == [("darts", 0), ("darts", 1), ("gdas", 0), ("gdas", 1)]
    assert (res["steps"] == 2).all() and res["table_acc"].between(0, 100).all()
    assert set(res.attrs["snapshots"]) == {("darts", 0), ("darts", 1), ("gdas", 0), ("gdas", 1)}
    assert list(summarize(res).index) == ["darts", "gdas"]
    with pytest.raises(ValueError, match="methods"):
        compare(["nope"])
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    csv = tmp_path / "out.csv"
    args = parser.parse_args(["--methods", "darts", "--seeds", "0", "--steps", "1", "--channels", "4", "--cells", "1",
                              "--batch-size", "8", "--hessian-every", "0", "--device", "cpu", "--csv", str(csv)])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "table_acc" in out and "|" in out  # the derived NB-201 cell is printed
    assert len(csv.read_text().strip().splitlines()) == 2


def test_darts_controls_drive_the_job_and_list_alarms(digits):
    from nasbench_lab.widgets.darts import DartsControls

    job = tiny("gdas", digits, steps=4, alarm_after=0)
    with torch.no_grad():
        job.alphas["cell"][:, 1] = 3.0
    run = Run(job, store=False)
    controls = DartsControls(run)
    controls.arch_lr.value = 0.01
    assert job.arch_optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    controls.anneal.value = False
    controls.temperature.value = 0.3
    assert job.temperature == pytest.approx(0.3)
    _run_steps(run, 1)
    assert controls.refresh() == 1 and "skip" in controls.alarms.value
    controls.anneal.value = True
    assert job.temperature == pytest.approx(10 - 9.9 / 3)  # back on the schedule at step 2 of 4
    run.stop()
    with pytest.raises(ValueError, match="differentiable"):
        DartsControls(Run(_NotDifferentiable(), store=False))


class _NotDifferentiable(Job):
    total_steps = 1
