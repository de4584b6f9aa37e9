"""Text generation: a narrow `Generator` protocol and its implementations.

`LlamaCppGenerator` runs a GGUF file (the bundled SmolLM2 or a `.gguf` path) in-process with
llama.cpp (the `xllamacpp` wheel): loaded in about a second, tokens streamed as they come.
`TransformersGenerator` loads a safetensors folder with transformers. `OpenAIGenerator` talks to
an OpenAI-compatible server. All decode greedily with a limit on new tokens, stream pieces of
text, stop early when a `threading.Event` is set (a user who pressed Stop or left), and run one
generation at a time per model (a lock serialises callers). `get_generator` picks one.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from qa.errors import ModelLoadError
from qa.models.catalog import catalog, installed_file, lookup
from qa.models.embedders import set_threads
from qa.models.locate import BUNDLED_GENERATOR, LoadsOnce, generator_source, is_gguf, offline

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


class _LocalModel(LoadsOnce):
    """A local model: constructing it is cheap; `warm_up()` (or the first answer) loads it, once."""

    def __init__(self, model: str, threads: int) -> None:
        self.model = self.name = model
        self.threads = threads
        self._model = None  # the loaded model
        self._lock = threading.Lock()


class TransformersGenerator(_LocalModel):
    """A local causal LM (a transformers model folder), loaded on first use (or by `warm_up()`)."""

    def __init__(self, model: str = "smollm2", threads: int = 2) -> None:
        super().__init__(model, threads)
        self._tokenizer = None

    def _load(self) -> None:
        began = time.perf_counter()
        folder, gguf_file = generator_source(self.name)
        offline()
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
        self._tokenizer = tokenizer
        self._model = model  # last: `warm_up` skips the lock once this is set
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
                with self._lock:  # taken by the generating thread, never held by a paused consumer
                    started.set()
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

        started = threading.Event()  # the model is ours: the streamer's time-out counts from here
        worker = threading.Thread(target=run, name="generate", daemon=True)
        worker.start()
        try:
            started.wait()
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            done.set()  # the consumer finished or stopped early: let generate() return
            worker.join()
        if failure:
            raise failure[0]


class LlamaCppGenerator(_LocalModel):
    """A GGUF model run by llama.cpp in this process (xllamacpp), loaded on first use.

    xllamacpp also opens an HTTP endpoint on a loopback port; it is given a random API key that
    nothing knows, so only this process can use the model.
    """

    def __init__(self, model: str = "smollm2", threads: int = 2, context_tokens: int = 4096) -> None:
        super().__init__(model, threads)
        self.context_tokens = context_tokens
        # The file it runs, named the same before and after loading ("smollm2" names a file in a package).
        self.name = f"{Path(BUNDLED_GENERATOR[1] if model == 'smollm2' else model).name} (llama.cpp)"

    def _load(self) -> None:
        began = time.perf_counter()
        folder, gguf_file = generator_source(self.model)
        if gguf_file is None:
            raise ModelLoadError(f"{self.model} is a model folder, not a .gguf file: llama.cpp runs GGUF files")
        path = folder / gguf_file
        try:
            import xllamacpp

            params = xllamacpp.CommonParams()
            params.model.path = str(path)
            params.n_ctx = self.context_tokens
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = self.threads
            params.api_keys = [secrets.token_hex(16)]  # its HTTP endpoint refuses everyone
            params.verbosity = -1
            self._model = xllamacpp.Server(params)
        except Exception as error:  # a missing wheel, an unreadable or foreign file: one message
            raise ModelLoadError(f"could not load the language model {self.model!r} ({path}) with llama.cpp: {error}") from error
        log.info("loaded language model %s with llama.cpp in %.1f s", path.name, time.perf_counter() - began)

    def stream(
        self, messages: Sequence[Message], max_new_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        self.warm_up()
        pieces: queue.Queue = queue.Queue()
        stop = threading.Event()  # the consumer left (or Stop): the callback tells llama.cpp to end
        failure: list[str] = []
        done = object()
        request = {"messages": list(messages), "max_tokens": max_new_tokens, "temperature": 0,
                   "repeat_penalty": REPETITION_PENALTY, "stream": True}

        def on_chunk(chunk: dict) -> bool:
            if "error" in chunk or "code" in chunk:
                failure.append(str(chunk.get("error") or chunk.get("message") or chunk))
                return True
            for choice in chunk.get("choices", []):
                text = (choice.get("delta") or {}).get("content")
                if text:
                    pieces.put(text)
            return stop.is_set() or (cancel is not None and cancel.is_set())

        def run() -> None:
            try:
                with self._lock:  # taken by the generating thread, never held by a paused consumer
                    self._model.handle_chat_completions(request, on_chunk)
            except Exception as error:  # surfaced in the caller's thread below
                failure.append(str(error))
            finally:
                pieces.put(done)

        worker = threading.Thread(target=run, name="generate", daemon=True)
        worker.start()
        try:
            while (piece := pieces.get()) is not done:
                yield piece
        finally:
            stop.set()
            worker.join()
        if failure:
            raise ModelLoadError(f"the language model failed while answering: {failure[0]}")


def get_generator(model: str, threads: int, models_dir: Path, url: str = "") -> Generator:
    """The generator for a setting: a server when `url` is given, llama.cpp for GGUF models (the
    bundled one, an opt-in model installed in `models_dir`, or a `.gguf` path), transformers for a
    model folder."""
    if url:
        return OpenAIGenerator(url, model)
    if model in catalog():
        if not lookup(model).path(models_dir).is_file():
            return NotInstalled(model, models_dir)  # evidence answers need no language model
        model = str(installed_file(model, models_dir))
    if is_gguf(model):
        return LlamaCppGenerator(model, threads)
    return TransformersGenerator(model, threads)


class NotInstalled:
    """A catalog model that is not installed: what to do is said when it is used (generative
    mode), not when the app starts, so evidence answers work meanwhile."""

    def __init__(self, model: str, models_dir: Path) -> None:
        self.name, self.models_dir = model, models_dir

    def warm_up(self) -> None:
        installed_file(self.name, self.models_dir)  # raises ModelLoadError saying how to install it

    def stream(self, messages: Sequence[Message], max_new_tokens: int,
               cancel: threading.Event | None = None) -> Iterator[str]:
        self.warm_up()
        yield from ()


class OpenAIGenerator:
    """A model behind an OpenAI-compatible HTTP server (vLLM, llama.cpp server, TGI, or
    `python -m qa.app.model_server`), for when one machine is not enough. Greedy (temperature 0),
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
