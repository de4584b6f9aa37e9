"""Train the reader's verdict branch: "Yes", "No" or "not decided here" for a yes/no question.

    .venv/bin/python scripts/train_verdict.py --init qa/reader_model --out OUT --work WORK   # resumable

The span reader stays exactly as it is (its weights are frozen, so every other question reads as
before). Beside its top `--layers` layers the branch has copies of them, started from the same
weights, that read the frozen layer below and end in a head of three logits at [CLS]: yes, no, and
"this window does not decide it". Only the branch is trained; the reader folder written to --out
holds the reader's tensors plus the branch's ("verdict.*", fp16), and the ONNX graph
(`qa.models.onnx_bert.bert_graph`) computes both in one run.

Data (the tune articles held out; BoolQ dev never trained on):
- answerable SQuAD 2.0 train questions turned into yes/no questions (`qa.evaluation.yesno`), half
  asked about another name or number of the article ("No"), on the window holding the answer;
- such questions on the best-sharing window that lacks the answer: "not decided here";
- the yes/no train files of ../shared/data/yesno/ (BoolQ train, PubMedQA, HotpotQA) with their
  passage, and their questions on another file's passage ("not decided here").

Recipe: AdamW, lr 1e-4, 6% warm-up then linear decay, batch 32, length-bucketed batches, bf16
autocast where the CPU has it, fixed seed; a checkpoint every 200 steps in --work. Then
`scripts/calibrate_verdict.py` chooses the branch's threshold on tune.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from qa.answer.reader import encode
from qa.evaluation.splits import DATA, TUNE, train_articles
from qa.evaluation.yesno import NO, UNDECIDED, YES, yes_no_files
from qa.models.locate import BUNDLED_READER, bundled_model_dir
from qa.models.onnx_bert import reader_weights
from qa.models.wordpieces import WordPieces

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_reader import ENCODERS, SEED, Leg, Quota, batches, build_examples  # noqa: E402

# ~26,500 train questions take a yes/no form: two thirds on the window holding the answer, a third on one without
VERDICT_DATA = Leg(Quota(0, 0, 0, 0, 0.0), held_out=TUNE, yes_no=18000, yes_no_near=8500, yes_no_files=2)


class VerdictBranch(torch.nn.Module):
    """Copies of the encoder's top layers and a head of three logits (yes, no, undecided) at [CLS]."""

    def __init__(self, model, layers: int) -> None:  # noqa: ANN001
        super().__init__()
        encoder = model.base_model.encoder.layer
        self.layer = torch.nn.ModuleList(copy.deepcopy(encoder[i]) for i in range(len(encoder) - layers, len(encoder)))
        self.head = torch.nn.Linear(model.config.hidden_size, 3)

    def forward(self, hidden: torch.Tensor, mask) -> torch.Tensor:  # noqa: ANN001
        for layer in self.layer:
            out = layer(hidden, attention_mask=mask)
            hidden = out[0] if isinstance(out, tuple) else out
        return self.head(hidden[:, 0])


def below_branch(model, batch: dict[str, torch.Tensor], layers: int):  # noqa: ANN001, ANN201
    """The frozen reader's hidden states under the branch, and the attention mask the layers take."""
    from transformers.masking_utils import create_bidirectional_mask

    with torch.no_grad():
        out = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               token_type_ids=batch["token_type_ids"], output_hidden_states=True)
        hidden = out.hidden_states[-1 - layers]
        mask = create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=batch["attention_mask"])
    return hidden, mask, out.last_hidden_state


def collate(examples: list[dict], ids: list[int]) -> dict[str, torch.Tensor]:
    width = max(len(examples[i]["input_ids"]) for i in ids)
    input_ids = torch.zeros(len(ids), width, dtype=torch.long)
    token_types = torch.zeros_like(input_ids)
    mask = torch.zeros_like(input_ids)
    for row, i in enumerate(ids):
        n = len(examples[i]["input_ids"])
        input_ids[row, :n] = torch.tensor(examples[i]["input_ids"])
        token_types[row, :n] = torch.tensor(examples[i]["token_type_ids"])
        mask[row, :n] = 1
    return {"input_ids": input_ids, "token_type_ids": token_types, "attention_mask": mask,
            "verdict": torch.tensor([examples[i]["yesno"] for i in ids])}


def mismatched(pieces: WordPieces, rng: random.Random) -> list[dict]:
    """Each yes/no file question on the passage of another question: "not decided here"."""
    items = yes_no_files(DATA.parent / "yesno")
    passages = [p for _, p, _ in items]
    out = []
    for question, passage, _ in items:
        other = rng.choice(passages)
        if other != passage:
            enc = encode(pieces, question, [other])[1][0]
            out.append({"input_ids": enc.ids, "token_type_ids": enc.type_ids, "yesno": UNDECIDED})
    return out


def balanced(examples: list[dict], rng: random.Random) -> list[dict]:
    """`examples` with "yes" ones dropped at random until there are no more than "no" ones (a
    question without another name or number to ask about stays a "yes" one)."""
    yes = [e for e in examples if e["yesno"] == YES]
    no = sum(e["yesno"] == NO for e in examples)
    dropped = {id(e) for e in rng.sample(yes, max(0, len(yes) - no))}
    return [e for e in examples if id(e) not in dropped]


def export(model, branch: VerdictBranch, init: Path, out: Path) -> None:  # noqa: ANN001
    """The reader folder: `init`'s tensors and calibration, plus the branch's tensors (fp16)."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    with safe_open(str(init / "model.safetensors"), "np") as stored:
        metadata = stored.metadata() or {}
        state = {k: stored.get_tensor(k) for k in stored.keys() if not k.startswith("verdict.")}
    for name, tensor in branch.state_dict().items():
        state[f"verdict.{name}"] = tensor.detach().float().numpy().astype(np.float16)
    metadata["base"] = metadata.get("base", ENCODERS["minilm"])
    save_file(state, str(out / "model.safetensors"), metadata=metadata)
    for name in ("calibration.json", "legs.json", "heldout.json"):
        if (init / name).is_file() and init.resolve() != out.resolve():
            shutil.copyfile(init / name, out / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", type=Path, default=BUNDLED_READER, help="the span reader (kept as it is)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path(".reader-train/verdict"))
    parser.add_argument("--layers", type=int, default=3, help="how many top layers the branch copies")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="use only this many examples (smoke tests)")
    args = parser.parse_args()

    from transformers import AutoModelForQuestionAnswering

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    base = str(bundled_model_dir("minilm"))
    pieces = WordPieces(Path(base))
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "examples.json"
    if cache.is_file():
        examples = json.loads(cache.read_text())
    else:
        rng = random.Random(SEED)
        examples = [e for e in build_examples(train_articles(DATA), pieces, rng, VERDICT_DATA, undecided=UNDECIDED)
                    if e["yesno"] >= 0]
        examples += mismatched(pieces, rng)
        examples = balanced(examples, rng)
        cache.write_text(json.dumps(examples))
    if args.limit:
        examples = random.Random(SEED).sample(examples, min(args.limit, len(examples)))
    counts = np.bincount([e["yesno"] for e in examples], minlength=3)
    print(f"{len(examples)} examples: {counts[YES]} yes, {counts[NO]} no, {counts[UNDECIDED]} undecided", file=sys.stderr)

    model = AutoModelForQuestionAnswering.from_pretrained(base, local_files_only=True)
    state = {k: torch.from_numpy(v) for k, v in reader_weights(args.init / "model.safetensors").items()
             if not k.startswith("verdict.")}
    model.load_state_dict(state, strict=False)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad = False
    branch = VerdictBranch(model, args.layers)
    optimizer = torch.optim.AdamW(branch.parameters(), lr=args.lr, weight_decay=0.01)
    plan = [batches(examples, args.batch, SEED + epoch) for epoch in range(args.epochs)]
    total = sum(map(len, plan))
    warmup = max(1, int(0.06 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / (total - warmup))))
    step = 0
    checkpoint = args.work / "checkpoint.pt"
    if checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False)
        branch.load_state_dict(saved["branch"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        step = saved["step"]
        print(f"resumed at step {step}/{total}", file=sys.stderr)
    bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    branch.train()
    began, losses, right = time.time(), [], []
    with tqdm(total=total, initial=step, desc="train", file=sys.stderr) as bar:
        done = 0
        for epoch, epoch_batches in enumerate(plan):
            for ids in epoch_batches:
                done += 1
                if done <= step:
                    continue
                batch = collate(examples, ids)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    hidden, mask, _ = below_branch(model, batch, args.layers)
                    logits = branch(hidden, mask).float()
                loss = torch.nn.functional.cross_entropy(logits, batch["verdict"])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(branch.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                losses.append(float(loss))
                right.append(float((logits.argmax(-1) == batch["verdict"]).float().mean()))
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses[-100:]):.3f}", acc=f"{np.mean(right[-100:]):.3f}")
                if step % 200 == 0 or step == total:
                    tmp = checkpoint.with_suffix(".tmp")
                    torch.save({"branch": branch.state_dict(), "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(), "step": step}, tmp)
                    tmp.replace(checkpoint)
    print(f"trained {step} steps in {time.time() - began:.0f} s", file=sys.stderr)
    export(model, branch, args.init, args.out)
    (args.out / "verdict_training.json").write_text(json.dumps({
        "examples": len(examples), "yes": int(counts[YES]), "no": int(counts[NO]), "undecided": int(counts[UNDECIDED]),
        "layers": args.layers, "epochs": args.epochs, "lr": args.lr, "batch": args.batch, "seed": SEED, "steps": total,
        "init": str(args.init), "held_out": list(VERDICT_DATA.held_out), "train_seconds": round(time.time() - began)},
        indent=1) + "\n")
    print(f"wrote {args.out / 'model.safetensors'}", file=sys.stderr)


if __name__ == "__main__":
    main()
