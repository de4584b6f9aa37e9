"""How fast a reader leg trains on this machine, per way of training MPNet-base (windows a second).

    .venv/bin/python scripts/pilot_reader_speed.py WORK/examples.json [--steps 12]

The same length-bucketed batches of 32 of a leg's examples (`train_reader.py` writes them to its
--work) for each variant: every matrix trained (embeddings frozen), rank-32 adapters on all 12
layers, adapters on the top 8 only (no backward below them), and the adapters under torch.compile.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", type=Path)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--variants", default="full,lora,lora-top8,lora-compiled")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("train_reader", ROOT / "scripts" / "train_reader.py")
    tr = importlib.util.module_from_spec(spec)
    sys.modules["train_reader"] = tr
    spec.loader.exec_module(tr)
    from transformers import AutoModelForQuestionAnswering

    from qa.models.locate import bundled_model_dir

    torch.set_num_threads(2)
    examples = json.loads(args.examples.read_text())
    plan = tr.batches(examples, 32, tr.SEED)[:args.steps + 2]
    bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    for variant in args.variants.split(","):
        torch.manual_seed(0)
        model = AutoModelForQuestionAnswering.from_pretrained(str(bundled_model_dir("mpnet")), local_files_only=True)
        adapted = frozenset(tr.with_lora(model, 32)) if variant.startswith("lora") else frozenset()
        frozen_layers = 4 if variant == "lora-top8" else 0
        for name, parameter in model.named_parameters():
            parameter.requires_grad = tr.is_trained(name, model, 0, frozen_layers, adapted)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=1e-4)
        loss_of = torch.compile(tr.loss_of, dynamic=True) if variant.endswith("compiled") else tr.loss_of
        model.train()
        windows, began = 0, 0.0
        for step, ids in enumerate(plan):
            if step == 2:  # the first steps warm up (and compile)
                windows, began = 0, time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = loss_of(model, tr.collate(examples, ids))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            windows += len(ids)
        rate = windows / (time.perf_counter() - began)
        print(f"{variant}: {sum(p.numel() for p in trainable) / 1e6:.1f} M trained, {rate:.1f} windows/s", flush=True)


if __name__ == "__main__":
    main()
