"""``nasbench-lab export RUN_ID | --space S --arch A --out DIR``: write a found network as a folder
(``arch.json``, ``model.safetensors``, plain-PyTorch ``model.py``) that needs no nasbench_lab."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", nargs="?", help="a run in the run store (its final architecture and supernet weights)")
    parser.add_argument("--space", help="export an architecture of this space instead of a run (with --arch)")
    parser.add_argument("--arch", help="the architecture (canonical string, e.g. '[4,3,3]'); with a run: "
                                       "instead of the run's final one")
    parser.add_argument("--out", help="folder to write (default: <workspace>/exports/<run id or space-arch>)")
    parser.add_argument("--force", action="store_true", help="replace the folder if it exists")
    parser.add_argument("--retrain", action="store_true",
                        help="train the standalone network with the space's ground-truth recipe; record its test accuracy")
    parser.add_argument("--epochs", type=float, help="with --retrain: epochs (default: the recipe's)")
    parser.add_argument("--dataset", help="with --space --retrain: the dataset (default digits)")
    parser.add_argument("--onnx", action="store_true", help="also model.onnx (needs onnx, onnxruntime: pip install "
                                                            "'nasbench_lab[export]')")
    parser.add_argument("--pt2", action="store_true", help="also model.pt2 (torch.export)")
    parser.add_argument("--seed", type=int, default=0, help="weight init / retraining seed without a run (default 0)")
    parser.add_argument("--store", help="SQLite run store (default: <workspace>/runs.sqlite)")


def main(args: argparse.Namespace) -> int:
    from nasbench_lab.exporter import export, load_snippet, read_info

    if (args.run_id is None) == (args.space is None):
        raise ValueError("export: give a run id or --space with --arch, not both "
                         "(e.g. nasbench-lab export --space pooling --arch '[4,3,3]' --out ./net)")
    store = None
    if args.run_id is not None:
        from nasbench_lab.runs.store import RunStore
        from nasbench_lab.validation import run_id

        run_id(args.run_id)
        store = RunStore(args.store) if args.store else RunStore()
    formats = [f for f, on in (("onnx", args.onnx), ("pt2", args.pt2)) if on]
    try:
        out = export(args.run_id or args.space, args.out, arch=args.arch, force=args.force, retrain=args.retrain,
                     epochs=args.epochs, formats=formats, store=store, seed=args.seed, dataset=args.dataset)
    except FileExistsError as exc:
        print(f"nasbench-lab export: error: {exc}", file=sys.stderr)
        return 2
    print(f"exported to {out}")
    for fmt, note in (read_info(out).get("formats") or {}).items():
        print(f"model.{fmt}: {note}")
    print(load_snippet(out))
    return 0
