"""The reader's training script: which weights a leg trains and what it ships."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def train_reader():
    spec = importlib.util.spec_from_file_location("train_reader", ROOT / "scripts" / "train_reader.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_reader"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import BertConfig, BertForQuestionAnswering

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32)
    return BertForQuestionAnswering(config)


def test_a_leg_with_frozen_layers_trains_only_those_above_them(train_reader, tiny_model):
    trained = {name for name, _ in tiny_model.named_parameters() if train_reader.is_trained(name, tiny_model, 0, 3)}
    assert any(".layer.3." in name for name in trained) and "qa_outputs.weight" in trained
    assert not any(f".layer.{i}." in name for name in trained for i in range(3))
    assert not any(".embeddings." in name for name in trained)


def test_a_leg_ships_every_layer_it_warm_started_from_and_can_carry_the_verdict_branch(train_reader, tiny_model, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    earlier = tmp_path / "earlier.safetensors"
    save_file({"verdict.head.weight": np.ones((3, 16), np.float16)}, str(earlier))
    train_reader.export(tiny_model, tmp_path / "out", 0, "minilm", verdict_from=earlier)
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "np") as shipped:
        names = set(shipped.keys())
        assert shipped.get_tensor("verdict.head.weight").sum() == 48
    assert any(".layer.0." in name for name in names) and "qa_outputs.weight" in names
    assert not any(".embeddings." in name for name in names)


def test_batches_are_padded_to_their_longest_example(train_reader):
    examples = [{"input_ids": [1, 2, 3], "token_type_ids": [0, 0, 1], "start": 2, "end": 2},
                {"input_ids": [1, 2], "token_type_ids": [0, 1], "start": 0, "end": 0, "yesno": 1}]
    batch = train_reader.collate(examples, [0, 1])
    assert batch["input_ids"].tolist() == [[1, 2, 3], [1, 2, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["yes_no"].tolist() == [-100, 1] and batch["start_positions"].tolist() == [2, 0]
    assert train_reader.collate_verdicts(examples[1:], [0])["verdict"].tolist() == [1]


def test_an_adapter_leg_ships_its_adapters_and_the_product_graph_gives_the_adapted_logits(train_reader, tmp_path):
    """An MPNet with rank-4 adapters: only adapters, biases, norms and the head are trained and
    shipped (fp16), and the graph built from the base and that file (adapters merged) gives the
    logits of the adapted torch model."""
    import torch
    from safetensors import safe_open
    from safetensors.numpy import save_file
    from transformers import MPNetConfig, MPNetForQuestionAnswering

    from qa.models.onnx_bert import OnnxBert, bert_graph, load_weights

    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=80)
    model = MPNetForQuestionAnswering(config).eval()
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(config.to_json_string())
    save_file({k.removeprefix("mpnet."): v.numpy() for k, v in model.state_dict().items() if k.startswith("mpnet.")},
              str(base / "model.safetensors"))
    adapted = frozenset(train_reader.with_lora(model, 4))
    trained = {name for name, _ in model.named_parameters() if train_reader.is_trained(name, model, 0, 0, adapted)}
    assert "mpnet.encoder.layer.1.intermediate.dense.lora_B" in trained and "qa_outputs.weight" in trained
    assert "mpnet.encoder.layer.1.intermediate.dense.bias" in trained
    assert not trained & adapted and not any(".embeddings." in name for name in trained)
    with torch.no_grad():  # as if trained: B is no longer 0; every value on the fp16 grid the file keeps
        for name, parameter in model.named_parameters():
            if name.endswith("lora_B"):
                parameter.normal_(0, 0.5)
            parameter.copy_(parameter.half().float())
    train_reader.export(model, tmp_path / "out", 0, "mpnet", adapted=adapted)
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "np") as shipped:
        assert set(shipped.keys()) == trained
        assert shipped.get_tensor("mpnet.encoder.layer.0.attention.attn.q.lora_A").dtype == np.float16
    weights, graph_config = load_weights(base, tmp_path / "out" / "model.safetensors")
    assert not any("lora" in name for name in weights)
    reader = OnnxBert(bert_graph(weights, graph_config, head=True).SerializeToString(), 1)
    ids = np.array([[0, 7, 8, 2, 2] + [9, 10, 11, 12] * 4 + [2], [0, 7, 2, 2, 13, 2] + [1] * 16])
    mask = (np.arange(22) < np.array([[22], [6]])).astype(np.int64)
    logits = reader.run(ids, mask, np.zeros_like(ids))
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    expected = torch.stack([out.start_logits, out.end_logits], dim=-1).numpy()
    real = mask.astype(bool)
    assert np.abs(logits[real] - expected[real]).max() < 1e-4
