"""Generator plumbing on a tiny randomly initialised model built here: loading, chat template,
streaming, the token limit and cancellation. The real bundled model is in test_ask.py."""

import threading
from pathlib import Path

import pytest

from qa.errors import ModelLoadError
from qa.models.generate import TransformersGenerator, render_prompt

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llm")
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"])
    raw.train_from_iterator(["the treaty was signed in 1965 by japan and korea"] * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=1, eos_token_id=2,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = None  # random weights: never stop before the limit
    model.save_pretrained(folder)
    return folder


CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "when was the treaty signed"}]


def test_loads_once_and_uses_the_chat_template(tiny_model_dir: Path):
    generator = TransformersGenerator(str(tiny_model_dir), threads=1)
    generator.warm_up()
    model = generator._model
    generator.warm_up()
    assert generator._model is model
    prompt = render_prompt(generator.tokenizer, CHAT)
    assert prompt == "<|system|>be brief\n<|user|>when was the treaty signed\n<|assistant|>"


def test_streams_pieces_and_respects_the_token_limit(tiny_model_dir: Path):
    generator = TransformersGenerator(str(tiny_model_dir), threads=1)
    pieces = list(generator.stream(CHAT, max_new_tokens=8))
    assert len(pieces) >= 2
    assert len(generator.tokenizer("".join(pieces), add_special_tokens=False)["input_ids"]) <= 8 + 2
    assert pieces == list(generator.stream(CHAT, max_new_tokens=8))  # greedy: deterministic


def test_cancel_stops_generation_early(tiny_model_dir: Path):
    generator = TransformersGenerator(str(tiny_model_dir), threads=1)
    cancel = threading.Event()
    stream = generator.stream(CHAT, max_new_tokens=200, cancel=cancel)
    first = next(stream)
    cancel.set()
    rest = list(stream)
    assert first and len(rest) < 20


def test_leaving_the_stream_early_frees_the_model(tiny_model_dir: Path):
    generator = TransformersGenerator(str(tiny_model_dir), threads=1)
    stream = generator.stream(CHAT, max_new_tokens=200)
    next(stream)
    stream.close()  # the consumer went away
    assert list(generator.stream(CHAT, max_new_tokens=3))  # the lock was released


def test_a_stream_left_paused_and_never_closed_does_not_hold_the_model(tiny_model_dir: Path):
    generator = TransformersGenerator(str(tiny_model_dir), threads=1)
    paused = generator.stream(CHAT, max_new_tokens=20)
    next(paused)  # its consumer stops reading but keeps it open (a server whose client left)
    second: list[str] = []
    reader = threading.Thread(target=lambda: second.extend(generator.stream(CHAT, max_new_tokens=3)), daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive() and second
    paused.close()


def test_a_plain_prompt_is_used_when_there_is_no_template(tiny_model_dir: Path):
    generator = TransformersGenerator(str(tiny_model_dir), threads=1)
    generator.tokenizer.chat_template = None
    assert render_prompt(generator.tokenizer, CHAT).endswith("User: when was the treaty signed\n\nAnswer:")


def test_missing_or_broken_models_give_a_clear_error(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="not found"):
        TransformersGenerator(str(tmp_path / "nowhere")).warm_up()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="could not load"):
        TransformersGenerator(str(tmp_path / "broken")).warm_up()


@pytest.mark.slow
def test_smollm2_is_the_bundled_gguf_run_by_llama_cpp_and_bad_files_are_explained(tmp_path: Path):
    """Streaming, cancelling and naming are checked for every generator in test_contracts.py."""
    from qa.models.generate import LlamaCppGenerator, get_generator

    generator = get_generator("smollm2", threads=2, models_dir=tmp_path)
    assert isinstance(generator, LlamaCppGenerator)
    assert generator.name == "SmolLM2-135M-Instruct.Q4_1.gguf (llama.cpp)"
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelLoadError, match="could not load the language model .* with llama.cpp"):
        LlamaCppGenerator(str(broken)).warm_up()
    with pytest.raises(ModelLoadError, match="not a .gguf file"):
        LlamaCppGenerator(str(tmp_path)).warm_up()


def test_a_catalog_model_not_installed_leaves_evidence_answers_working(seed_settings, fake_embedder, tmp_path: Path):
    """QA_MODEL=<a catalog model not installed>: evidence answers as usual; generative mode (or
    loading the model) says how to install it."""
    import dataclasses

    from conftest import FakeReader

    from qa.index.build import build_index
    from qa.models.generate import get_generator
    from qa.pipeline import Pipeline

    generator = get_generator("qwen-1.5b", 1, tmp_path / "models")
    with pytest.raises(ModelLoadError, match="qwen-1.5b is not installed.*qa models install qwen-1.5b"):
        generator.warm_up()
    settings = dataclasses.replace(seed_settings, model="qwen-1.5b", models_dir=tmp_path / "models")
    build_index(settings, fake_embedder, progress=False)
    pipeline = Pipeline(settings, embedder=fake_embedder, reader=FakeReader())
    answer = pipeline.ask("When did Japan and South Korea establish diplomatic relations?", mode="evidence")
    assert answer.outcome == "answer" and "December 1965" in answer.text
    with pytest.raises(ModelLoadError, match="qa models install qwen-1.5b"):
        pipeline.ask("When did Japan and South Korea establish diplomatic relations?", mode="generative")
