"""Per-op latency tables: the cost model is the sum of the timed units, the table is cached in the
workspace and read back without timing, and bad input is a clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nasbench_lab import spaces
from nasbench_lab.spaces import latency as lat
from nasbench_lab.spaces.cost import cost_model


def test_table_sums_its_units_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("NASBENCH_LAB_HOME", str(tmp_path))
    torch.set_num_threads(1)
    sp = spaces.get("nbmacro")
    table = lat.latency_table(sp, device="cpu", warmup=1, repeat=2)
    assert len(table.units) == 2 + 8 * 3 and all(v > 0 for v in table.units.values())
    path = table.path()
    assert path.is_file() and path.is_relative_to(tmp_path) and json.loads(path.read_text())["space"] == "nbmacro"
    model = table.cost_model()
    a = sp.sample(0)
    by_hand = table.units['["stem"]'] + table.units['["head"]'] + sum(
        table.units[json.dumps(["op", i, g])] for i, g in enumerate(a.genes))
    assert model(a.genes) == pytest.approx(by_hand)
    # read back from the workspace: nothing is timed again
    monkeypatch.setattr(lat, "time_module", lambda *a, **k: pytest.fail("timed a cached table"))
    again = lat.latency_table(sp, device="cpu")
    assert again.units == table.units
    assert cost_model(sp, "latency", device="cpu")(a.genes) == pytest.approx(by_hand)


def test_nb201_none_edges_cost_nothing_and_convs_cost_more(tmp_path):
    sp = spaces.get("nb201")
    fixed, levels = sp.latency_units()
    assert levels[0][0] == [] and len(levels[0][3]) == 15  # 'none' runs nothing; an op runs in 15 cells
    table = lat.LatencyTable(sp, "test", 1, {lat._key_str(k): 1.0 for k in
                                             [*fixed, *(k for lv in levels for o in lv.values() for k in o)]})
    m = table.cost_model()
    assert m.lower == len(fixed) and m((3,) * 6) == len(fixed) + 6 * 15


def test_time_module_on_cpu_and_errors():
    ms = lat.time_module(torch.nn.Conv2d(3, 8, 3), (3, 16, 16), "cpu", batch=2, warmup=1, repeat=3)
    assert np.isfinite(ms) and ms > 0
    with pytest.raises(ValueError, match="no per-op latency table"):
        lat.latency_table("darts", device="cpu")
    with pytest.raises(ValueError, match="batch"):
        lat.latency_table("nbmacro", device="cpu", batch=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here; the CUDA-event branch needs one")
def test_time_module_on_cuda():
    ms = lat.time_module(torch.nn.Conv2d(3, 8, 3), (3, 16, 16), "cuda", warmup=1, repeat=3)
    assert ms > 0 and lat.device_key("cuda").startswith("cuda-")
