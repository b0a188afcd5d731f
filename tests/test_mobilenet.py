"""The thesis' MobileNetV2 space (App. II): strings, closed-form counts against two independent
counters (our forward hooks and ptflops), ID at shape-changing layers, supernet weight sharing,
and training from the one-shot Trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from nasbench_lab import spaces
from nasbench_lab.nn.flops import count_macs
from nasbench_lab.nn.mobile import se_channels
from nasbench_lab.spaces.mobilenet import OPS, MobileNetSpace

MB = spaces.get("mobilenet")
CIFAR = spaces.get("mobilenet-cifar")


def test_size_geometry_and_round_trip():
    assert MB.size == 13 ** 21 and MB.num_levels == 21 and len(OPS) == 13
    assert [layer.c_out for layer in MB.layers] == [32] * 4 + [40] * 4 + [80] * 4 + [96] * 4 + [192] * 4 + [320]
    assert [layer.stride for layer in MB.layers if layer.stride == 2] == [2, 2, 2, 2]  # stacks 1, 2, 3, 5
    # input size of every layer (Table II-1's "Input" is a stack's), then the head's
    assert MB.sizes(224) == [112, 56, 56, 56, 56, 28, 28, 28, 28, 14, 14, 14] + [14] * 5 + [7, 7, 7, 7] + [7]
    assert CIFAR.sizes(32) == [32] * 5 + [16] * 4 + [8] * 8 + [4] * 4 + [4]
    a = MB.parse("6A03-0000-FFFF-1234-5BCD-E")
    assert a.genes[:4] == (6, 7, 0, 3) and str(a) == "6A03-0000-FFFF-1234-5BCD-E"
    assert MB.parse("6A0300 00FFFF12345BCDE".replace(" ", "")) == a  # 21 characters without dashes
    rng = np.random.default_rng(0)
    for _ in range(50):
        b = MB.sample(rng)
        assert MB.parse(str(b)) == b and len(MB.neighbours(b)) == 21 * 12


@pytest.mark.parametrize("bad", ["", "4444-4444-4444-4444-4444", "4444-4444-4444-4444-4444-44", "4444-4444-4444-4444-4444-G",
                                 "4444_4444-4444-4444-4444-4", "a444-4444-4444-4444-4444-4", "٤444-4444-4444-4444-4444-4"])
def test_malformed_strings_name_the_input(bad):
    with pytest.raises(ValueError) as err:
        MB.parse(bad)
    msg = str(err.value)
    assert msg.startswith("mobilenet:") and repr(bad) in msg and "Example" in msg


def _bias_outputs(model: nn.Module) -> int:
    # ptflops counts one MAC per bias output; our convention counts none (SE convs act on 1x1 maps)
    return (sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d) and m.bias is not None)
            + sum(m.out_features for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None))


@pytest.mark.parametrize("space,res", [(MB, 224), (MB, 32), (CIFAR, 32)])
def test_flops_and_params_match_independent_counters(space, res):
    ptflops = pytest.importorskip("ptflops")
    rng = np.random.default_rng(res)
    for _ in range(3):
        a = space.sample(rng)
        model = space.model(a)
        assert space.params(a) == sum(p.numel() for p in model.parameters())
        ours = space.flops(a, resolution=res)
        assert ours == count_macs(model, (3, res, res))
        macs, params = ptflops.get_model_complexity_info(model, (3, res, res), as_strings=False,
                                                         print_per_layer_stat=False, backend="aten")
        assert macs == ours + _bias_outputs(model) and params == space.params(a)


def test_identity_at_a_stride_two_first_layer_is_a_projection_and_a_no_op_elsewhere():
    fixed, table = MB.layer_table("params")
    first = MB.layers[0]  # 16 -> 32 at stride 2; layer 2 is 32 -> 32 at stride 1
    assert table[0, 0] == first.c_in * first.c_out + 2 * first.c_out and table[1, 0] == 0
    f_fixed, f_table = MB.layer_table("flops", 224)
    assert f_table[0, 0] == 56 * 56 * 16 * 32 and f_table[1, 0] == 0
    # MB6_K3_SE at layer 2 by hand: expand, depthwise, SE (two 1x1 on the pooled map), project
    hidden = 32 * 6
    assert f_table[1, OPS.index("MB6_K3_SE")] == (56 * 56 * 32 * hidden + 56 * 56 * hidden * 9
                                                  + 2 * hidden * se_channels(hidden) + 56 * 56 * hidden * 32)
    # MobileNetV2's canonical equivalence: IDs after a stack's first layer move to the stack's end
    assert str(MB.canonical(MB.parse("4040-4444-4444-4444-4444-4"))) == "4400-4444-4444-4444-4444-4"


def test_standalone_model_inherits_the_supernet_weights():
    small = MobileNetSpace("cifar", width_mult=0.25, space_name="mobilenet-cifar")
    torch.manual_seed(0)
    net = small.supernet(num_classes=10).eval()
    a = small.sample(3)
    model = small.model(a, num_classes=10).eval()
    missing, unexpected = model.load_state_dict(net.state_dict(), strict=False)
    assert not missing
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), net(x, a), atol=1e-5)
    with pytest.raises(ValueError, match="needs an architecture"):
        net(x)


@pytest.fixture
def tiny_space():
    """The CIFAR geometry at width x0.25, registered for the Trainer and removed afterwards."""
    spaces.register("mobilenet-tiny", "nasbench_lab.spaces.mobilenet", "MobileNetSpace", variant="cifar",
                    width_mult=0.25, space_name="mobilenet-tiny")
    yield spaces.get("mobilenet-tiny")
    spaces.unregister("mobilenet-tiny")


def test_supernet_trains_from_the_one_shot_trainer(tiny_space):
    from nasbench_lab.training.trainer import Trainer

    torch.set_num_threads(1)
    t = Trainer(space="mobilenet-tiny", method="uniform", dataset="digits", steps=4, batch_size=16,
                val_batch_size=32, rank_at_end=False, device="cpu", seed=0)
    before = [p.detach().clone() for p in t.net.stem.parameters()]
    out = [t.step() for _ in range(4)]
    assert all(np.isfinite(o["loss"]) and 0.0 <= o["reward"] <= 1.0 for o in out)
    assert all(tiny_space.parse(o["arch"]).space == "mobilenet-tiny" for o in out)
    assert any(not torch.equal(b, p) for b, p in zip(before, t.net.stem.parameters()))  # the shared stem learns
