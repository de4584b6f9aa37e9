"""The encoders on ONNX Runtime give what transformers gives, and their graphs are cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.answer.reader import encode
from qa.models.embedders import BertEmbedder, is_plain_bert
from qa.models.locate import BUNDLED_READER, bundled_model_dir
from qa.models.onnx_bert import graph_file, load_bert
from qa.models.wordpieces import WordPieces

TEXTS = ["When did Japan and South Korea establish diplomatic relations?", "Seoul",
         "The Treaty on Basic Relations between Japan and the Republic of Korea was signed on 22 June 1965 in Tokyo."]


@pytest.mark.slow
def test_the_embedder_gives_sentence_transformers_vectors():
    from sentence_transformers import SentenceTransformer

    folder = bundled_model_dir("minilm")
    assert is_plain_bert(folder)
    expected = SentenceTransformer(str(folder), device="cpu").encode(TEXTS, normalize_embeddings=True)
    vectors = BertEmbedder("minilm", 2, precision="fp32").embed(TEXTS)
    assert vectors.shape == expected.shape and vectors.dtype == np.float32
    assert np.min(np.sum(vectors * expected, axis=1)) > 0.9999
    quantised = BertEmbedder("minilm", 2, precision="int8").embed(TEXTS)
    assert 0.98 < np.min(np.sum(quantised * expected, axis=1)) < 0.9999


@pytest.mark.slow
def test_the_reader_gives_the_logits_of_the_trained_torch_model():
    import torch
    from transformers import AutoModelForQuestionAnswering

    from qa.answer.reader import reader_encoder
    from qa.models.onnx_bert import reader_weights

    weights = BUNDLED_READER / "model.safetensors"
    base = bundled_model_dir(reader_encoder(weights))  # MiniLM or MPNet, as the weights say
    model = AutoModelForQuestionAnswering.from_pretrained(str(base), local_files_only=True)
    state = {k: torch.from_numpy(v) for k, v in reader_weights(weights).items()}  # 8-bit matrices as fp32
    model.qa_outputs = torch.nn.Linear(model.config.hidden_size, state["qa_outputs.weight"].shape[0])  # 4: yes/no too
    model.load_state_dict(state, strict=False)
    (ids, mask, types), _ = encode(WordPieces(base), TEXTS[0], TEXTS[1:])
    inputs = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}
    if model.config.model_type == "bert":
        inputs["token_type_ids"] = torch.tensor(types)
    with torch.inference_mode():
        out = model.eval().base_model(**inputs, output_hidden_states=True)
        expected = model.qa_outputs(out.last_hidden_state).numpy()
        verdict = branch_logits(model, state, out.hidden_states, inputs["attention_mask"])
    logits = load_bert(base, weights, True, 2, None).run(ids, mask, types)
    real = mask.astype(bool)
    assert np.abs(logits[real][:, :expected.shape[-1]] - expected[real]).max() < 1e-3
    if verdict is not None:  # the shipped reader's verdict branch: yes, no, undecided at [CLS]
        assert np.abs(logits[:, 0, expected.shape[-1]:] - verdict).max() < 1e-3


def branch_logits(model, state: dict, hidden_states, attention_mask):  # noqa: ANN001, ANN201
    """The verdict branch's logits at [CLS] as transformers computes them (None: no branch)."""
    import copy

    import torch
    from transformers.masking_utils import create_bidirectional_mask

    count = len({k.split(".")[2] for k in state if k.startswith("verdict.layer.")})
    if not count:
        return None
    top = model.base_model.encoder.layer
    hidden = hidden_states[-1 - count]
    mask = create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=attention_mask)
    for i in range(count):
        layer = copy.deepcopy(top[len(top) - count + i])
        layer.load_state_dict({k.removeprefix(f"verdict.layer.{i}."): v for k, v in state.items()
                               if k.startswith(f"verdict.layer.{i}.")})
        hidden = layer(hidden, attention_mask=mask)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    return (hidden[:, 0] @ state["verdict.head.weight"].T + state["verdict.head.bias"]).numpy()


def test_a_graph_is_built_once_then_read_from_the_cache(tmp_path: Path, monkeypatch):
    import qa.models.onnx_bert as onnx_bert

    folder = bundled_model_dir("minilm")
    first = graph_file(folder, None, False, tmp_path)
    assert isinstance(first, str) and Path(first).parent == tmp_path / "onnx"

    def no_building(*_args, **_kwargs):
        raise AssertionError("built again")

    monkeypatch.setattr(onnx_bert, "bert_graph", no_building)
    assert graph_file(folder, None, False, tmp_path) == first


def test_a_damaged_cached_graph_is_built_again(tmp_path: Path):
    folder = bundled_model_dir("minilm")
    cached = Path(graph_file(folder, None, False, tmp_path))
    cached.write_bytes(cached.read_bytes()[:1000])
    (ids, mask, types), _ = WordPieces(folder).batch(["Seoul"], 16)
    assert load_bert(folder, None, False, 1, tmp_path).run(ids, mask, types).shape == (1, 3, 384)
    assert cached.stat().st_size > 1_000_000


def test_an_unwritable_cache_still_gives_a_model(tmp_path: Path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    graph = graph_file(bundled_model_dir("minilm"), None, False, blocked)
    assert isinstance(graph, bytes) and len(graph) > 1_000_000


def test_texts_embedded_by_sessions_side_by_side_get_their_own_vectors():
    import itertools

    from qa.config import Settings

    words = ["oxygen", "treaty", "rainforest", "volcano", "election", "violin", "glacier", "bishop", "tariff", "comet"]
    pairs = itertools.combinations(words, 2)
    texts = [f"The {a} and the {b}" + " near the river" * (n % 5) for n, (a, b) in enumerate(pairs)]
    texts.append("Seoul " * 300)  # cut to the model's 256 tokens: a batch of its own
    parallel = BertEmbedder("minilm", 2, Settings().cache_dir, sessions=2)
    single = BertEmbedder("minilm", 1, Settings().cache_dir)
    vectors = parallel.embed(texts)
    assert parallel.sessions == 2 and vectors.shape == (len(texts), 384)
    assert np.allclose(vectors, single.embed(texts), atol=1e-5)  # the same batches, whichever session ran them
    one_by_one = np.concatenate([single.embed([text]) for text in texts])
    similarity = vectors @ one_by_one.T  # int8 activations are scaled per batch: close to alone, not equal
    assert np.array_equal(similarity.argmax(axis=1), np.arange(len(texts))) and similarity.diagonal().min() > 0.98
    assert parallel.embed([]).shape == (0, 384)


def test_a_graph_of_changed_weights_replaces_the_older_one(tmp_path: Path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(bundled_model_dir("minilm"), folder)
    cache = tmp_path / "cache"
    first = Path(graph_file(folder, None, False, cache))
    (folder / "config.json").write_text((folder / "config.json").read_text() + " ")
    second = Path(graph_file(folder, None, False, cache))
    assert second != first and second.is_file() and not first.exists()
    assert graph_file(folder, None, False, cache, "int8") != str(second) and second.is_file()  # another keeps its own


def test_writing_a_graph_deletes_graphs_unused_for_a_month_and_keeps_those_in_use(tmp_path: Path):
    import os
    import time

    folder = bundled_model_dir("minilm")
    onnx_dir = tmp_path / "onnx"
    onnx_dir.mkdir()
    month_ago = time.time() - 31 * 86_400
    stale, other_file = onnx_dir / "bert-0000000000000000-1111111111111111.onnx", onnx_dir / "notes.txt"
    for path in (stale, other_file):
        path.write_bytes(b"x")
        os.utime(path, (month_ago, month_ago))
    in_use = Path(graph_file(folder, None, False, tmp_path))
    os.utime(in_use, (month_ago, month_ago))
    assert graph_file(folder, None, False, tmp_path) == str(in_use) and in_use.stat().st_mtime > month_ago + 86_400
    assert not stale.exists() and other_file.exists()  # only graphs are the cache's to delete
    graph_file(folder, None, False, tmp_path, "int8")  # writes another graph: the one in use stays
    assert in_use.is_file()




def test_tokens_are_made_without_holding_the_tokenizers_lock():
    """Counting a file's sentences and encoding a batch (index builds) leave the tokenizer's lock
    free while they tokenize, so a question's tokens do not wait for them (they waited ~0.5 s per
    10,000 sentences counted); each setting keeps a tokenizer of its own, never reset."""
    pieces = WordPieces(bundled_model_dir("minilm"))
    texts = [f"Sentence {i} of a long document about Japan and South Korea." for i in range(600)]
    pieces.count(["made"]), pieces.encode(["made"], 32), pieces.batch([("a", "b")], 16, True)  # each setting's tokenizer
    locked_while_encoding = []

    class Probe:  # records whether the lock is held whenever a tokenizer encodes
        def __init__(self, tokenizer) -> None:  # noqa: ANN001
            self.tokenizer = tokenizer

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self.tokenizer, name)

        def encode_batch(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            locked_while_encoding.append(pieces._lock.locked())
            return self.tokenizer.encode_batch(*args, **kwargs)

    pieces._tokenizers = {key: Probe(tokenizer) for key, tokenizer in pieces._tokenizers.items()}
    counts = pieces.count(texts)
    encoded = pieces.encode(texts, 32)
    pieces.count(["A question's own words."]), pieces.batch([("A question?", "A window.")], 16, True)
    assert locked_while_encoding == [False, False, False, False]
    one_by_one = WordPieces(bundled_model_dir("minilm"))  # the same as texts tokenized alone
    sample = range(0, len(texts), 37)
    assert [counts[i] for i in sample] == [one_by_one.count([texts[i]])[0] for i in sample]
    assert [encoded[i].ids for i in sample] == [one_by_one.encode([texts[i]], 32)[0].ids for i in sample]
    assert encoded[0].ids != one_by_one.encode([texts[0]], 8)[0].ids  # another cut is another tokenizer


def test_a_damaged_tokenizer_is_a_clear_error(tmp_path: Path):
    from qa.errors import ModelLoadError

    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "model": ', encoding="utf-8")
    with pytest.raises(ModelLoadError, match="could not read the tokenizer"):
        WordPieces(tmp_path).count(["Seoul"])


def test_an_mpnet_reader_gives_the_logits_of_transformers(tmp_path: Path):
    """MPNet's graph (relative-position bias, positions from 2, no token types) on a small random
    MPNet, with a reader's top layer and head laid over it in 8 bits, as transformers computes it."""
    import torch
    from safetensors.numpy import save_file
    from transformers import MPNetConfig, MPNetForQuestionAnswering

    from qa.models.onnx_bert import OnnxBert, bert_graph, load_weights, to_int8

    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=80)
    model = MPNetForQuestionAnswering(config).eval()
    with torch.no_grad():
        model.mpnet.encoder.relative_attention_bias.weight.normal_(0, 1.0)
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(config.to_json_string())
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    save_file({k.removeprefix("mpnet."): v for k, v in state.items() if k.startswith("mpnet.")},
              str(base / "model.safetensors"))
    trained = {k: v for k, v in state.items() if ".layer.1." in k or k.startswith(("qa_outputs", "mpnet.encoder.rel"))}
    save_file(to_int8(trained, smallest=1), str(tmp_path / "reader.safetensors"))
    weights, graph_config = load_weights(base, tmp_path / "reader.safetensors")
    assert np.abs(weights["encoder.layer.1.output.dense.weight"] - trained["mpnet.encoder.layer.1.output.dense.weight"]
                  ).max() < 0.02  # 8 bits
    reader = OnnxBert(bert_graph(weights, graph_config, head=True).SerializeToString(), 1)
    ids = np.array([[0, 7, 8, 2, 2] + [9, 10, 11, 12] * 16 + [2], [0, 7, 2, 2, 13, 2] + [1] * 64])
    mask = (np.arange(70) < np.array([[70], [6]])).astype(np.int64)
    logits = reader.run(ids, mask, np.zeros_like(ids))
    model.load_state_dict({k if k.startswith("qa_outputs") else f"mpnet.{k}": torch.from_numpy(v.astype(np.float32))
                           for k, v in weights.items()}, strict=False)  # the 8-bit weights, as the graph has them
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    expected = torch.stack([out.start_logits, out.end_logits], dim=-1).numpy()
    real = mask.astype(bool)
    assert logits.shape == (2, 70, 2)
    assert np.abs(logits[real] - expected[real]).max() < 1e-4


def test_a_verdict_branch_reads_the_layer_below_the_top_and_adds_three_logits(tmp_path: Path):
    """A reader with a verdict branch (its own copy of the top layer, reading the layer below,
    and a head of yes/no/undecided logits): the span logits stay the reader's, and the branch's
    logits at [CLS] are what transformers computes for that branch."""
    import torch
    from safetensors.numpy import save_file
    from transformers import BertConfig, BertForQuestionAnswering
    from transformers.masking_utils import create_bidirectional_mask

    from qa.models.onnx_bert import OnnxBert, bert_graph, load_weights

    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=80)
    model, other = BertForQuestionAnswering(config).eval(), BertForQuestionAnswering(config).eval()
    head = torch.nn.Linear(32, 3)
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(config.to_json_string())
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    save_file({k.removeprefix("bert."): v for k, v in state.items() if k.startswith("bert.")}, str(base / "model.safetensors"))
    reader = {k: v for k, v in state.items() if k.startswith("qa_outputs")}
    reader |= {f"verdict.layer.0.{k}": v.numpy() for k, v in other.bert.encoder.layer[2].state_dict().items()}
    reader |= {f"verdict.head.{k}": v.detach().numpy() for k, v in head.state_dict().items()}
    save_file(reader, str(tmp_path / "reader.safetensors"))
    weights, graph_config = load_weights(base, tmp_path / "reader.safetensors")
    ids = np.array([[2, 7, 8, 3] + [9, 10, 11, 12] * 8 + [3], [2, 7, 3, 13, 3] + [0] * 32])
    mask = (np.arange(37) < np.array([[37], [5]])).astype(np.int64)
    types = np.zeros_like(ids)
    logits = OnnxBert(bert_graph(weights, graph_config, head=True).SerializeToString(), 1).run(ids, mask, types)
    inputs = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
        below = out.hidden_states[-2]
        branch = other.bert.encoder.layer[2](below, attention_mask=create_bidirectional_mask(
            config=config, inputs_embeds=below, attention_mask=inputs["attention_mask"]))
        verdict = head((branch[0] if isinstance(branch, tuple) else branch)[:, 0]).numpy()
    assert logits.shape == (2, 37, 5)
    real = mask.astype(bool)
    spans = torch.stack([out.start_logits, out.end_logits], dim=-1).numpy()
    assert np.abs(logits[real][:, :2] - spans[real]).max() < 1e-4
    assert np.abs(logits[:, 0, 2:] - verdict).max() < 1e-4
    span_only = OnnxBert(bert_graph(weights, graph_config, head=True, verdict=False).SerializeToString(), 1)
    assert np.array_equal(span_only.run(ids, mask, types), logits[..., :2])  # the branch changes no span logit


def test_only_a_yes_no_question_runs_the_verdict_branch():
    from qa.answer.reader import TrainedReader, Window

    reader = TrainedReader(BUNDLED_READER, 2, precision="int8")
    reader.warm_up()
    ids, mask, types = encode(reader._pieces, "Who withdrew it?", ["South Korea withdrew its complaint."])[0]
    assert np.array_equal(reader._model.run(ids, mask, types), reader._verdict_model.run(ids, mask, types)[..., :2])
    ran = []
    for name in ("_model", "_verdict_model"):
        model = getattr(reader, name)
        setattr(reader, name, type("Counted", (), {"run": lambda self, *a, m=model, n=name: ran.append(n) or m.run(*a)})())
    text = "South Korea withdrew its WTO complaint in March 2023."
    window = Window(1, "c", 0, len(text), text, ((0, len(text)),), 0.5)
    plain = reader.read("When did South Korea withdraw its WTO complaint?", [window])
    verdict = reader.read("Did South Korea withdraw its WTO complaint?", [window])
    assert ran == ["_model", "_verdict_model"]
    assert not plain[0].verdict and verdict[0].verdict == "yes"
