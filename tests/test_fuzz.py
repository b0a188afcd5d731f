"""Property-based fuzzing of every parser and loader that takes outside input (issue 14).

Each input either parses to a valid object that round-trips, or raises ``ValueError`` /
``FileNotFoundError`` naming the input (the space, the flag, the file); any other exception,
a hang or a crash fails. Reproducible in CI: ``derandomize=True`` (examples derived from the test
itself, not from a random seed) and a fixed ``max_examples`` per property (run with
``--hypothesis-show-statistics`` to see the counts).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import sqlite3
import string
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nasbench_lab import spaces
from nasbench_lab import validation as V
from nasbench_lab.cli import build_parser
from nasbench_lab.data import safe_pickle
from nasbench_lab.runs import Run, RunStore
from nasbench_lab.runs import checkpoint as ckpt
from nasbench_lab.runs import store as store_mod
from nasbench_lab.spaces.darts import PRIMITIVES
from nasbench_lab.training import samplers

FUZZ = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])
FEW = settings(FUZZ, max_examples=60)


SPACE_NAMES = spaces.names()


# ----------------------------------------------------------------------------- architecture text
def _check_parse(space: str, value: object) -> None:
    sp = spaces.get(space)
    try:
        arch = sp.parse(value)
    except ValueError as exc:
        assert str(exc).startswith(f"{space}:"), exc  # names the space (and shows an example)
        return
    assert arch.space == space and sp.parse(str(arch)) == arch and str(sp.parse(str(arch))) == str(arch)


@pytest.mark.parametrize("space", SPACE_NAMES)
@settings(FEW, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_canonical_string_round_trips(space, seed):
    sp = spaces.get(space)
    a = sp.sample(seed)
    assert sp.parse(str(a)) == a and sp.parse(list(a.genes)) == a


def _edits(text: str, alphabet: str) -> st.SearchStrategy[str]:
    edit = st.tuples(st.sampled_from("idr"), st.integers(0, max(0, len(text))), st.text(alphabet, min_size=1, max_size=4))

    def apply(ops):
        s = text
        for kind, pos, chunk in ops:
            pos = min(pos, len(s))
            s = s[:pos] + chunk + s[pos:] if kind == "i" else s[:pos] + s[pos + len(chunk):] if kind == "d" \
                else s[:pos] + chunk + s[pos + len(chunk):]
        return s
    return st.lists(edit, min_size=1, max_size=4).map(apply)


GRAMMAR_CHARS = "[](),|~+=-_' \"0123456789abcdefghijklmnopqrstuvwxyz" + "\n\t.é∞"


@pytest.mark.parametrize("space", SPACE_NAMES)
@settings(FEW, max_examples=40)
@given(data=st.data())
def test_edited_canonical_strings_parse_or_name_the_space(space, data):
    sp = spaces.get(space)
    base = str(sp.sample(data.draw(st.integers(0, 1000))))
    _check_parse(space, data.draw(_edits(base, GRAMMAR_CHARS)))


@pytest.mark.parametrize("space", SPACE_NAMES)
@settings(FEW, max_examples=25)
@given(value=st.one_of(st.text(max_size=60), st.none(), st.integers(), st.floats(),
                       st.lists(st.one_of(st.integers(-3, 12), st.floats(allow_nan=True), st.booleans(), st.none(),
                                          st.text(max_size=2)), max_size=40),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=3), st.binary(max_size=8)))
def test_arbitrary_values_parse_or_name_the_space(space, value):
    _check_parse(space, value)


_TOKENS = (["Genotype", "(", ")", "[", "]", ",", "=", "range", "normal", "reduce", "normal_concat", "reduce_concat"]
           + [f"'{op}'" for op in PRIMITIVES] + ['"sep_conv_3x3"', "0", "1", "2", "3", "4", "5", "6", "-1", "99",
                                                 "3000000000", "1.5", "'x'", "None", "__import__", "."])


@settings(FUZZ, max_examples=300)
@given(tokens=st.lists(st.sampled_from(_TOKENS), max_size=80), sep=st.sampled_from(["", " ", ", ", "\n"]))
def test_genotype_token_soup_parses_or_names_the_space(tokens, sep):
    _check_parse("darts", "Genotype(" + sep.join(tokens))
    _check_parse("darts", sep.join(tokens))


@FEW
@given(seed=st.integers(0, 10_000), data=st.data())
def test_genotype_with_one_field_replaced(seed, data):
    """A real genotype with one field's value swapped for grammar-shaped junk."""
    text = str(spaces.get("darts").sample(seed))
    field = data.draw(st.sampled_from(["normal_concat=[2, 3, 4, 5]", "reduce_concat=[2, 3, 4, 5]"]))
    junk = data.draw(st.sampled_from(["range(2, 6)", "range(6)", "range(2,6,)", "range()", "range('a')",
                                      "range(0, 3000000000)", "[5, 4, 3, 2]", "[2, 3, 4, 5,]", "(2, 3, 4, 5)",
                                      "range(2, 6, 1)", "range(-1, 3)", "[]"]))
    _check_parse("darts", text.replace(field, field.split("=")[0] + "=" + junk))


# ----------------------------------------------------------------------------- --options JSON and option types
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                              st.text(max_size=6)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                    max_leaves=8)


@FUZZ
@given(text=st.one_of(st.text(max_size=40), JSON.map(json.dumps)))
def test_options_text_is_an_object_or_names_the_flag(text):
    try:
        obj = V.json_object("--options", text, '{"warmup": 0.2}')
    except ValueError as exc:
        assert str(exc).startswith("--options:"), exc
        return
    assert isinstance(obj, dict) and json.loads(text) == obj


_POOL = spaces.get("pooling")
_SAMPLERS = [n for n in samplers.names()]


def _option_values(name: str) -> st.SearchStrategy[dict]:
    valid = samplers.options_of(samplers.sampler_class(name)) or []
    return st.dictionaries(st.sampled_from(valid) if valid else st.just("x"), JSON, max_size=3)


@pytest.mark.parametrize("name", _SAMPLERS)
@settings(FEW, max_examples=20)
@given(data=st.data())
def test_sampler_options_build_a_sampler_or_name_the_option(name, data):
    opts = data.draw(_option_values(name))
    try:
        s = samplers.get(name, _POOL, seed=0, **opts)
    except ValueError as exc:
        assert any(k in str(exc) for k in opts) or "method_options" in str(exc), exc
        return
    a = s.sample()  # a sampler that was built works
    assert a.space == "pooling"


# ----------------------------------------------------------------------------- CLI flags
_FLAGS = {
    "run": ["--steps", "--batch-size", "--lr", "--seed", "--rank-images", "--rank-every", "--top", "--options"],
    "groundtruth": ["--epochs", "--seeds", "--batch-size", "--limit", "--top"],
    "runs": ["--limit"],
    "show": ["--neighbours"],
    "demo": ["--epochs"],
    "compare-samplers": ["--steps", "--batch-size", "--val-batch-size", "--rank-images", "--seeds"],
    "darts": ["--steps", "--batch-size", "--channels", "--cells", "--arch-lr", "--hessian-every", "--seeds"],
    "search": ["--budget", "--seeds"],
    "lab": ["--port"],
}
_VALUES = st.one_of(st.sampled_from(["0", "-1", "1", "2.5", "nan", "inf", "-inf", "1e400", "", " ", "0x10", "３",
                                     "10", "99999999999999999999", "{}", "[1]", '{"a": 1}']),
                    st.text(string.printable, max_size=6))


@FUZZ
@given(cmd=st.sampled_from(sorted(_FLAGS)), data=st.data())
def test_cli_flags_parse_or_name_the_flag(cmd, data, capsys):
    flag = data.draw(st.sampled_from(_FLAGS[cmd]))
    value = data.draw(_VALUES)
    argv = [cmd, *(["pooling", "[4,3,3]"] if cmd == "show" else []), flag, value]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        err = capsys.readouterr().err
        assert exc.code == 2 and f"argument {flag}" in err, err  # argparse names the flag
        return
    got = getattr(args, flag.lstrip("-").replace("-", "_"))
    if isinstance(got, int | float) and not isinstance(got, bool):  # a number was accepted: it is a sane one
        assert math.isfinite(float(got)) and (got > 0 or (got == 0 and flag in ("--rank-every", "--hessian-every", "--top",
                                                                        "--neighbours")))


# ----------------------------------------------------------------------------- checkpoint loader
@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> bytes:
    from test_runs import Walk

    d = tmp_path_factory.mktemp("ck")
    run = Run(Walk(30, seed=1), store=False, checkpoint_dir=d)
    run.step(4)
    path = run.checkpoint()
    run.stop()
    return path.read_bytes()


def _mutate(raw: bytes) -> st.SearchStrategy[bytes]:
    n = len(raw)

    def flipped(flips: list[tuple[int, int]]) -> bytes:
        out = bytearray(raw)
        for i, bit in flips:
            out[i] ^= 1 << bit
        return bytes(out)

    flip = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 7)), min_size=1, max_size=3).map(flipped)
    cut = st.integers(0, n - 1).map(lambda k: raw[:k])
    splice = st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=16)).map(lambda t: raw[:t[0]] + t[1] + raw[t[0]:])
    return st.one_of(flip, cut, splice, st.binary(max_size=64), st.binary(max_size=8).map(lambda b: b"PK\x03\x04" + b))


def _foreign_files() -> list[bytes]:
    out = []
    buf = io.BytesIO()
    torch.save({"format": "nasbench_lab.checkpoint/1", "job": [1, 2]}, buf)  # a legacy file, valid but no run
    out.append(buf.getvalue())
    buf = io.BytesIO()
    torch.save(torch.zeros(3), buf)
    out.append(buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.pkl", b"not a pickle")
    out += [buf.getvalue(), b"", b"SQLite format 3\x00" + bytes(100), ckpt.MAGIC, ckpt.MAGIC + b"0" * 64 + b"\n"]
    return out


def _check_load(path: Path, raw: bytes, original: bytes) -> None:
    try:
        data = ckpt.load(path)
    except (ValueError, FileNotFoundError) as exc:
        assert str(path) in str(exc), exc  # names the file
    else:
        assert raw == original or raw.startswith(b"PK") and isinstance(data, dict), "a changed file loaded silently"
    try:
        Run.resume(path, store=False)
    except (ValueError, FileNotFoundError) as exc:
        assert str(path) in str(exc) or "job_class" in str(exc) or "run_id" in str(exc), exc


@FUZZ
@given(data=st.data())
def test_damaged_checkpoints_load_or_name_the_file(good_checkpoint, data, tmp_path):
    raw = data.draw(st.one_of(_mutate(good_checkpoint), st.sampled_from(_foreign_files())))
    path = tmp_path / "c" / "last.pt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(raw)
    _check_load(path, raw, good_checkpoint)


def test_the_intact_checkpoint_resumes(good_checkpoint, tmp_path):
    path = tmp_path / "c" / "last.pt"
    path.parent.mkdir()
    path.write_bytes(good_checkpoint)
    assert Run.resume(path, store=False).job.step_count == 4


# ----------------------------------------------------------------------------- store loader
@pytest.fixture(scope="module")
def good_store(tmp_path_factory) -> bytes:
    from test_runs import Walk

    d = tmp_path_factory.mktemp("st")
    store = RunStore(d / "s.sqlite")
    Run(Walk(12, seed=2), store=store, checkpoint_dir=d).start().result(timeout=60)
    store.close()
    src, dst = sqlite3.connect(d / "s.sqlite"), sqlite3.connect(d / "copy.sqlite")
    src.backup(dst)  # one self-contained file, as a copied store would be
    dst.execute("PRAGMA journal_mode=DELETE")
    src.close()
    dst.close()
    return (d / "copy.sqlite").read_bytes()


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_damaged_stores_read_or_name_the_file(good_store, data, tmp_path):
    raw = data.draw(st.one_of(_mutate(good_store), st.sampled_from(_foreign_files())))
    folder = tmp_path / "s"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path = folder / "runs.sqlite"
    path.write_bytes(raw)
    try:
        store = RunStore(path)
        runs = store.runs()
        for run_id in runs["id"][:2]:
            if isinstance(run_id, str):
                try:
                    store.run(run_id)
                except KeyError:
                    pass  # a damaged id can fail the lookup of itself: a KeyError naming it
                store.metrics(run_id)
        store.close()
    except ValueError as exc:
        assert str(path) in str(exc), exc


# ----------------------------------------------------------------------------- writers racing for one run id
# Several writers (processes, or threads of one process) race to own run "shared" (issue 23):
# exactly one wins, every other one is refused with RunOwned naming the winner (pid and host), and
# none of the winner's rows is lost or replaced. The processes are long-lived workers (started once
# per module: importing torch dominates their start), driven by JSON lines on stdin.
_WORKER = """
import json, os, sys
sys.path.insert(0, {tests!r})
from test_fuzz import _compete, _finish
run = None
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["do"] == "race":
        os.environ["NASBENCH_LAB_HOME"] = cmd["home"]
        print(json.dumps({{"ready": os.getpid()}}), flush=True)
        run, reply = _compete(cmd)
        print(json.dumps(reply), flush=True)
    else:
        print(json.dumps(_finish(run)), flush=True)
        run = None
"""


def _compete(cmd: dict) -> tuple[Run | None, dict]:
    """One contender: wait for the start signal, then try to own run 'shared' and take 2 steps."""
    import time

    from test_runs import Walk

    while not Path(cmd["go"]).exists():
        time.sleep(0.001)
    try:
        store = RunStore(cmd["db"])
        if cmd["how"] == "resume":
            run = Run.resume("shared", store=store, flush_every_s=0)
        else:
            run = Run(Walk(cmd["steps"], seed=cmd["seed"]), store=store, run_id="shared", checkpoint_dir=cmd["ck"],
                      flush_every_s=0)
        run.step(2, timeout=60)
    except Exception as exc:  # noqa: BLE001 - the kind of refusal is what the test checks
        return None, {"won": False, "pid": os.getpid(), "error": type(exc).__name__, "message": str(exc)}
    return run, {"won": True, "pid": os.getpid(), "seed": cmd["seed"], "notice": getattr(run, "notice", None)}


def _finish(run: Run | None) -> dict:
    if run is None:
        return {"status": None}
    run.start()
    return {"status": run.wait(60)}


@pytest.fixture(scope="module")
def writers():
    import subprocess
    import sys

    code = _WORKER.format(tests=str(Path(__file__).parent))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    yield procs
    for p in procs:
        p.stdin.close()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def _ask(proc, cmd: dict | None = None) -> dict:
    if cmd is not None:
        proc.stdin.write(json.dumps(cmd) + "\n")
        proc.stdin.flush()
    line = proc.stdout.readline()
    assert line, f"writer process {proc.pid} died (exit {proc.poll()})"
    return json.loads(line)


@settings(FUZZ, max_examples=10)
@given(prior=st.sampled_from(["none", "stopped", "dead here", "silent elsewhere"]), n=st.integers(2, 3),
       via=st.sampled_from(["processes", "threads"]), steps=st.integers(4, 30))
def test_writers_racing_for_one_run_id(writers, prior, n, via, steps, tmp_path, _workspace):
    import queue
    import socket
    import subprocess
    import tempfile
    import threading

    from test_runs import Walk

    event(f"{n} {via}, prior run: {prior}")
    d = Path(tempfile.mkdtemp(dir=tmp_path))
    db, ck = d / "s.sqlite", d / "ck"
    if prior != "none":  # a run 'shared' that stopped at step 2, or whose writer died there
        first = Run(Walk(steps, seed=99), store=RunStore(db), run_id="shared", checkpoint_dir=ck)
        first.step(2)
        first.stop()
        del first
        if prior != "stopped":
            dead = subprocess.Popen(["true"])
            dead.wait()
            pid, host, beat = ((dead.pid, socket.gethostname(), time.time()) if prior == "dead here" else
                               (4242, "old-node", time.time() - store_mod.STALE_S - 5))
            con = sqlite3.connect(db)
            with con:
                con.execute("UPDATE runs SET status='running', owner='gone', pid=?, host=?, heartbeat=?",
                            (pid, host, beat))
            con.close()
    base = {"db": str(db), "ck": str(ck), "go": str(d / "go"), "home": str(_workspace), "steps": steps,
            "how": "new" if prior == "none" else "resume"}
    if via == "processes":
        for i, proc in enumerate(writers[:n]):
            assert "ready" in _ask(proc, {**base, "do": "race", "seed": i})
        (d / "go").touch()
        replies = [_ask(proc) for proc in writers[:n]]
    else:
        out: queue.Queue = queue.Queue()
        runs: dict[int, Run] = {}

        def contend(i: int) -> None:
            run, reply = _compete({**base, "seed": i})
            if run is not None:
                runs[i] = run
            out.put(reply)

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        (d / "go").touch()
        for t in threads:
            t.join(120)
        replies = [out.get_nowait() for _ in range(n)]

    winners = [r for r in replies if r["won"]]
    assert len(winners) == 1, replies
    win = winners[0]
    owner = f"owned by pid {win['pid']} on host {socket.gethostname()!r}"
    for r in replies:
        if not r["won"]:
            assert r["error"] == "RunOwned" and owner in r["message"], r
    if prior in ("dead here", "silent elsewhere"):
        assert "took over the lease" in win["notice"], win
    # the winner runs to the end; then every row is its own and nothing of it was lost
    if via == "processes":
        finals = [_ask(proc, {"do": "finish"}) for proc in writers[:n]]
        assert sorted(f["status"] or "" for f in finals)[-1] == "finished", finals
    else:
        (winner,) = runs.values()
        assert _finish(winner)["status"] == "finished"
    store = RunStore(db)
    rec = store.run("shared")
    ref = np.cumsum(np.random.default_rng(99 if prior != "none" else win["seed"]).normal(size=steps))
    assert rec["recorded_status"] == "finished" and rec["owner"] is None and rec["pid"] == win["pid"]
    assert rec["summary"]["final"] == pytest.approx(ref[-1])
    m = store.metrics("shared")
    assert m.index.tolist() == list(range(1, steps + 1)) and np.allclose(m["pos"], ref)
    store.close()


# ----------------------------------------------------------------------------- dataset pickles
@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_damaged_dataset_pickles_load_as_data_or_are_refused(data):
    import pickle

    good = pickle.dumps({b"labels": [1, 2], b"data": np.zeros((2, 3072), np.uint8), b"filenames": [b"a", b"b"]},
                        protocol=2)
    raw = data.draw(st.one_of(_mutate(good), st.binary(max_size=80)))
    try:
        obj = safe_pickle.loads(raw)
    except Exception as exc:  # noqa: BLE001 - the loader's callers turn any failure into a ValueError
        assert not isinstance(exc, SystemExit | KeyboardInterrupt | MemoryError)
        return
    # whatever loaded is plain data only
    safe_pickle._check(obj)



# ----------------------------------------------------------------------------- bounded work (issue 23)
# Shared-reference bombs, nesting depth and file sizes, drawn at random: every case is decided by
# the bounds (refused with the limit named, or loaded when within them) and does linear work, so
# none takes more than a fraction of a second (the old loaders walked width**depth items).
BOUNDED = settings(FUZZ, max_examples=40)


def _shared(depth: int, width: int, kind: str) -> object:
    """One container shared ``width`` times per level, ``depth`` levels: width**depth leaves as a tree."""
    x: object = []
    for _ in range(depth):
        x = [x] * width if kind == "list" else tuple([x] * width) if kind == "tuple" else dict.fromkeys(range(width), x)
    return x


def _bounds_decide(exc: BaseException | None, depth: int, width: int, max_depth: int, max_items: int) -> None:
    """Refused exactly when a bound is passed: the deepest container sits at ``depth + 1`` (below the
    file's top dict), the tree holds between ``containers`` and ``2 * containers + 10`` items
    (dicts add a key per value)."""
    containers = sum(width ** i for i in range(depth + 1))
    deep = depth + 1 >= max_depth
    event("loaded" if exc is None else "refused: too deep" if "nested" in str(exc) else "refused: too many items")
    if exc is None:
        assert not deep and containers <= max_items, "a structure beyond the bounds loaded"
    else:
        assert deep or 2 * containers + 10 > max_items, exc  # refused only beyond a bound...
        assert "nested more than" in str(exc) or "items counted as a tree" in str(exc), exc  # ...and says which


@BOUNDED
@given(depth=st.integers(0, 60), width=st.integers(1, 12), kind=st.sampled_from(["list", "tuple", "dict"]),
       protocol=st.integers(2, 5))
def test_shared_reference_bombs_in_dataset_pickles_are_bounded(depth, width, kind, protocol):
    import pickle

    raw = pickle.dumps({b"labels": [1], b"x": _shared(depth, width, kind)}, protocol=protocol)
    assert len(raw) < 200 + 60 * depth + 8 * width * depth  # a few bytes per level: the memo
    try:
        safe_pickle.loads(raw)
    except safe_pickle.UnsafePickleError as exc:
        _bounds_decide(exc, depth, width, safe_pickle.MAX_DEPTH, safe_pickle.MAX_ITEMS)
    else:
        _bounds_decide(None, depth, width, safe_pickle.MAX_DEPTH, safe_pickle.MAX_ITEMS)


@BOUNDED
@given(depth=st.integers(0, 90), width=st.integers(1, 12), kind=st.sampled_from(["list", "tuple", "dict"]))
def test_shared_reference_bombs_in_signed_checkpoints_are_bounded(depth, width, kind, tmp_path):
    from test_trust import signed, torch_bytes

    path = tmp_path / "bomb.pt"
    path.write_bytes(signed(torch_bytes({"format": ckpt.FORMAT, "meta": {}, "job": _shared(depth, width, kind)})))
    try:
        data = ckpt.load(path)
    except ValueError as exc:
        assert str(path) in str(exc), exc
        _bounds_decide(exc, depth, width, ckpt.MAX_DEPTH, ckpt.MAX_ITEMS)
    else:
        _bounds_decide(None, depth, width, ckpt.MAX_DEPTH, ckpt.MAX_ITEMS)
        job = data["job"]
        for _ in range(min(depth, 3)):  # the sharing survives decoding (decoded once)
            items = list(job.values()) if isinstance(job, dict) else list(job)
            assert all(v is items[0] for v in items)
            job = items[0]


@BOUNDED
@given(depth=st.integers(1, 45), checkpoint=st.booleans())
def test_tuple_key_bombs_are_refused_before_hashing(depth, checkpoint, tmp_path):
    """d[t] = 1 with t = (t, t) nested ``depth`` times: hashing t visits 2**(depth+1) - 1 tuples."""
    from test_trust import signed, torch_zip, tuple_key_pickle

    items = 2 ** (depth + 1) - 1
    if checkpoint:
        path = tmp_path / "key.pt"
        tag = b"X\x06\x00\x00\x00formatX\x19\x00\x00\x00nasbench_lab.checkpoint/2s"
        path.write_bytes(signed(torch_zip(tuple_key_pickle(depth, tag))))
        load, limit, max_depth = (lambda: ckpt.load(path)), ckpt.MAX_KEY_ITEMS, ckpt.MAX_DEPTH
    else:
        raw = tuple_key_pickle(depth)
        load, limit, max_depth = (lambda: safe_pickle.loads(raw)), safe_pickle.MAX_KEY_ITEMS, safe_pickle.MAX_DEPTH
    try:
        load()
    except ValueError as exc:
        event(f"{'checkpoint' if checkpoint else 'pickle'}: "
              + ("refused by the scan" if items > limit or depth + 1 > max_depth else "loaded (small key)"))
        if items > limit or depth + 1 > max_depth:  # refused by the scan, before anything is hashed
            assert f"a dict key of {items:,} items" in str(exc) or "tuples nested more than" in str(exc), exc
        else:  # a small key: loaded, then a dataset's content check wants string keys
            assert not checkpoint and "is a tuple; expected str or bytes keys" in str(exc), exc
    else:
        event("checkpoint: loaded (small key)")
        assert items <= limit and checkpoint


@BOUNDED
@given(depth=st.integers(1, 250), where=st.sampled_from(["json", "pickle", "checkpoint"]))
def test_depth_limits_refuse_with_the_limit_and_accept_below_it(depth, where, tmp_path):
    import pickle

    nested: list = []
    for _ in range(depth - 1):
        nested = [nested]
    if where == "json":
        limit, load = V.MAX_JSON_DEPTH, lambda: V.json_loads("--options", "[" * depth + "]" * depth)
    elif where == "pickle":
        raw = pickle.dumps({b"x": nested}, protocol=2)
        limit, load = safe_pickle.MAX_DEPTH - 1, lambda: safe_pickle.loads(raw)
    else:
        from test_trust import signed, torch_bytes

        path = tmp_path / "deep.pt"
        path.write_bytes(signed(torch_bytes({"format": ckpt.FORMAT, "meta": {}, "job": nested})))
        limit, load = ckpt.MAX_DEPTH - 1, lambda: ckpt.load(path)
    event(f"{where}: " + ("beyond the limit" if depth > limit else "within"))
    try:
        load()
    except ValueError as exc:
        assert depth > limit and "nested more than" in str(exc), exc
    else:
        assert depth <= limit


@BOUNDED
@given(excess=st.integers(-64, 64), what=st.sampled_from(["checkpoint", "dataset", "json"]))
def test_size_limits_are_checked_before_reading(excess, what, tmp_path, monkeypatch):
    import pickle

    limit = 4096
    path = tmp_path / "f"
    if what == "json":
        text = json.dumps({"a": "x" * (limit + excess - 10)})
        event("json: " + ("over the limit" if len(text) > limit else "within"))
        try:
            V.json_loads("--options", text, max_chars=limit)
        except ValueError as exc:
            assert len(text) > limit and f"JSON text of {len(text)} characters; at most {limit}" in str(exc)
        else:
            assert len(text) <= limit
        return
    if what == "checkpoint":
        monkeypatch.setattr(ckpt, "MAX_CHECKPOINT_BYTES", limit)
        path.write_bytes(ckpt.MAGIC + bytes(limit + excess - len(ckpt.MAGIC)))
        load = lambda: ckpt.load(path)  # noqa: E731
    else:
        monkeypatch.setattr(safe_pickle, "MAX_FILE_BYTES", limit)
        path.write_bytes(pickle.dumps({b"x": b"y" * (limit + excess - 26)}, protocol=2))
        load = lambda: safe_pickle.load_path(path)  # noqa: E731
    size = path.stat().st_size
    event(f"{what}: " + ("over the limit" if size > limit else "within"))
    try:
        load()
    except ValueError as exc:
        if size > limit:
            assert f"is {size:,} bytes; files of at most {limit:,} bytes are read" in str(exc), exc
        else:
            assert what == "checkpoint" and "truncated or corrupt" in str(exc), exc  # read, judged on content
    else:
        assert size <= limit and what == "dataset"
