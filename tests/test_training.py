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
