"""The encoders (MiniLM's 6-layer BERT, MPNet-base) on ONNX Runtime, for the embedder and the reader.

The ONNX graph is written here, in memory, from the safetensors weights (the package's, with the trained
reader's layers laid over them), so nothing is exported, converted or cached on disk, and neither torch nor
transformers is imported to answer: a cold `qa ask` pays for onnxruntime (~0.2 s) instead of
sentence-transformers (~7 s). Tokenizing: `qa.models.wordpieces`.

The graph is plain BERT (word + position + type embeddings, post-norm layers, erf GELU); ONNX Runtime fuses it
at load. The reader's graph (with the span head) is packed: its matrix products read only the real tokens of a
batch, laid end to end, and only attention sees them padded, window by window; a batch of the reader's 8
windows is a quarter padding, so this reads ~13 % faster. Building it needs the `onnx` package (~1.3 s), so
the serialised graph is kept in the cache folder (`QA_CACHE_DIR`), named by the weights it was built from; a
cache that cannot be written only costs that time on each start. `tests/test_onnx_bert.py` checks the graph
against transformers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# The packed graph's: the real tokens' ids, types and positions (n,); the padded batch's mask; for each
# padded place, the real token it reads (padding: any); each real token's place in the flat batch.
PACKED_INPUTS = ("input_ids", "token_type_ids", "position_ids", "attention_mask", "to_padded", "to_packed")
GRAPH_VERSION = 2  # raise when bert_graph changes what it writes: cached graphs are then rebuilt
# Raise when the graph or the session options change the numbers a model computes: an index's
# fingerprint records it, so vectors of an older runtime are not searched with newer queries.
# 2: sessions without ONNX Runtime's SkipLayerNormalization fusion.
RUNTIME_VERSION = 2
# A cached graph not used for this long (another install's path, a precision or model no longer
# set) is deleted when a new graph is written: each is 60-90 MB.
UNUSED_GRAPH_DAYS = 30


# Where each block's weights are, by the names transformers gives them.
BERT_NAMES = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
              "output": "attention.output.dense", "norm": "attention.output.LayerNorm"}
MPNET_NAMES = {"query": "attention.attn.q", "key": "attention.attn.k", "value": "attention.attn.v",
               "output": "attention.attn.o", "norm": "attention.LayerNorm"}


class _Graph:
    """Nodes and initializers of an ONNX graph being written, with BERT's building blocks."""

    def __init__(self, weights: dict[str, np.ndarray], eps: float, mpnet: bool = False) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.weights, self.eps, self.mpnet = weights, eps, mpnet
        self.names = MPNET_NAMES if mpnet else BERT_NAMES
        self.nodes: list = []
        self.initializers: list = []
        self.counter = iter(range(1_000_000))

    def const(self, array: np.ndarray, name: str | None = None) -> str:
        name = name or f"c{next(self.counter)}"
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def scalar(self, value: float) -> str:
        return self.const(np.array(value, dtype=np.float32))

    def node(self, op: str, inputs: Sequence[str], **attributes) -> str:
        out = f"t{next(self.counter)}"
        self.nodes.append(self.helper.make_node(op, list(inputs), [out], **attributes))
        return out

    def weight(self, name: str) -> str:
        return self.const(self.weights[name].astype(np.float32), name)

    def linear(self, x: str, name: str) -> str:
        w = self.weights[f"{name}.weight"].astype(np.float32).T.copy()  # (in, out) for MatMul
        return self.node("Add", [self.node("MatMul", [x, self.const(w, f"{name}.weight")]), self.weight(f"{name}.bias")])

    def layer_norm(self, x: str, name: str) -> str:
        return self.node("LayerNormalization", [x, self.weight(f"{name}.weight"), self.weight(f"{name}.bias")],
                         axis=-1, epsilon=self.eps)

    def embeddings(self, positions: str | None = None) -> str:
        """Word + position + type embeddings, then LayerNorm; positions 0 … tokens-1 unless given."""
        node, weight = self.node, self.weight
        ids, types = "input_ids", "token_type_ids"
        if positions is None:
            tokens = node("Gather", [node("Shape", [ids]), self.const(np.array(1, dtype=np.int64))], axis=0)
            positions = node("Range", [self.const(np.array(0, dtype=np.int64)), tokens,
                                       self.const(np.array(1, dtype=np.int64))])
        if self.mpnet:  # its positions count from 2 (after the padding id, 1); it has no token types
            positions = node("Add", [positions, self.const(np.array(2, dtype=np.int64))])
        x = node("Add", [node("Gather", [weight("embeddings.word_embeddings.weight"), ids]),
                         node("Gather", [weight("embeddings.position_embeddings.weight"), positions])])
        if not self.mpnet:
            x = node("Add", [x, node("Gather", [weight("embeddings.token_type_embeddings.weight"), types])])
        return self.layer_norm(x, "embeddings.LayerNorm")

    def relative_position_bias(self, buckets: int = 32, max_distance: int = 128) -> str:
        """MPNet's attention bias by relative position (1, heads, tokens, tokens), as
        transformers' `MPNetEncoder.relative_position_bucket` computes it: the same for every layer."""
        from onnx import TensorProto

        node, const = self.node, self.const
        tokens = node("Gather", [node("Shape", ["attention_mask"]), const(np.array(1, dtype=np.int64))], axis=0)
        place = node("Range", [const(np.array(0, dtype=np.int64)), tokens, const(np.array(1, dtype=np.int64))])
        # n = query place - key place; buckets: half for n < 0, exact below max_exact, logarithmic above
        n = node("Sub", [node("Unsqueeze", [place, const(np.array([1], dtype=np.int64))]),
                         node("Unsqueeze", [place, const(np.array([0], dtype=np.int64))])])
        half = buckets // 2
        max_exact = half // 2
        negative = node("Cast", [node("Less", [n, const(np.array(0, dtype=np.int64))])], to=TensorProto.INT64)
        distance = node("Abs", [n])
        far = node("Cast", [node("Max", [distance, const(np.array(1, dtype=np.int64))])], to=TensorProto.FLOAT)
        log_scale = (half - max_exact) / math.log(max_distance / max_exact)
        large = node("Cast", [node("Mul", [node("Log", [node("Div", [far, self.scalar(float(max_exact))])]),
                                           self.scalar(log_scale)])], to=TensorProto.INT64)  # truncates: ≥ 0 here
        large = node("Min", [node("Add", [large, const(np.array(max_exact, dtype=np.int64))]),
                             const(np.array(half - 1, dtype=np.int64))])
        bucket = node("Add", [node("Mul", [negative, const(np.array(half, dtype=np.int64))]),
                              node("Where", [node("Less", [distance, const(np.array(max_exact, dtype=np.int64))]),
                                             distance, large])])
        values = node("Gather", [self.weight("encoder.relative_attention_bias.weight"), bucket], axis=0)  # (t, t, heads)
        return node("Unsqueeze", [node("Transpose", [values], perm=[2, 0, 1]), const(np.array([0], dtype=np.int64))])

    def padding_bias(self) -> str:
        """Padding is masked by adding a large negative number to its attention scores."""
        from onnx import TensorProto

        keep = self.node("Cast", [self.node("Unsqueeze", ["attention_mask", self.const(np.array([1, 2], dtype=np.int64))])],
                         to=TensorProto.FLOAT)
        return self.node("Mul", [self.node("Sub", [self.scalar(1.0), keep]), self.scalar(-1e4)])

    def layer(self, x: str, prefix: str, bias: str, shapes: tuple[str, str, str], packed: bool = False) -> str:
        """One encoder layer: self-attention, then the feed-forward block (exact GELU). `packed`:
        `x` holds the real tokens only (n, width); attention reads them padded."""
        node, linear, (split, merge, scale) = self.node, self.linear, shapes

        names = self.names

        def heads_of(part: str, perm: list[int]) -> str:
            projected = linear(x, f"{prefix}.{names[part]}")
            if packed:
                projected = node("Gather", [projected, "to_padded"], axis=0)
            return node("Transpose", [node("Reshape", [projected, split])], perm=perm)

        q = heads_of("query", [0, 2, 1, 3])
        k = heads_of("key", [0, 2, 3, 1])
        v = heads_of("value", [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), bias])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), merge])
        if packed:
            context = node("Gather", [context, "to_packed"], axis=0)
        x = self.layer_norm(node("Add", [linear(context, f"{prefix}.{names['output']}"), x]),
                            f"{prefix}.{names['norm']}")
        hidden = linear(x, f"{prefix}.intermediate.dense")
        gelu = node("Mul", [node("Mul", [hidden, self.scalar(0.5)]),
                            node("Add", [node("Erf", [node("Div", [hidden, self.scalar(math.sqrt(2.0))])]),
                                         self.scalar(1.0)])])
        return self.layer_norm(node("Add", [linear(gelu, f"{prefix}.output.dense"), x]), f"{prefix}.output.LayerNorm")


def bert_graph(weights: dict[str, np.ndarray], config: dict, head: bool = False, verdict: bool = True):  # noqa: ANN201 - onnx.ModelProto
    """An ONNX model of BertModel: int64 inputs (batch, tokens) → "hidden" (batch, tokens, width);
    or with `head`, packed (`PACKED_INPUTS`, see `packed`) → the span head's "logits" (batch,
    tokens, 2: start and end, or 4: then yes and no too, read at [CLS]; padding's are any); a
    reader with a verdict branch ("verdict.layer.<i>.*": copies of the top layers reading the layer
    below them, and "verdict.head.*") adds its yes, no and undecided logits (read at [CLS]) after the
    span head's, unless `verdict` is false. Weight names as transformers' BertModel writes them."""
    from onnx import TensorProto, helper

    width, heads = config["hidden_size"], config["num_attention_heads"]
    mpnet = config.get("model_type") == "mpnet"
    if mpnet and not head:
        raise ValueError("an MPNet graph is built only as a reader (with its head)")
    graph = _Graph(weights, float(config.get("layer_norm_eps", 1e-12)), mpnet)
    x = graph.embeddings("position_ids" if head else None)
    bias = graph.padding_bias()
    if mpnet:
        bias = graph.node("Add", [bias, graph.relative_position_bias(config.get("relative_attention_num_buckets", 32))])
    shapes = (graph.const(np.array([0, 0, heads, width // heads], dtype=np.int64)),
              graph.const(np.array([-1, width] if head else [0, 0, width], dtype=np.int64)),
              graph.scalar(1.0 / math.sqrt(width // heads)))
    layers, branched = config["num_hidden_layers"], verdict_layers(weights) if head and verdict else 0
    for i in range(layers):
        if i == layers - branched:
            below = x
        x = graph.layer(x, f"encoder.layer.{i}", bias, shapes, packed=head)
    output = "logits" if head else "hidden"
    last = graph.linear(x, "qa_outputs") if head else x
    if branched:  # the verdict branch: its own top layers over the same layer below, then yes/no/undecided
        for i in range(branched):
            below = graph.layer(below, f"verdict.layer.{i}", bias, shapes, packed=True)
        last = graph.node("Concat", [last, graph.linear(below, "verdict.head")], axis=-1)
    if head:
        last = graph.node("Gather", [last, "to_padded"], axis=0)
    graph.nodes.append(helper.make_node("Identity", [last], [output]))
    if head:
        inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"] if name in
                                                ("attention_mask", "to_padded") else ["n"]) for name in PACKED_INPUTS]
    else:
        inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"]) for name in INPUTS]
    model = helper.make_graph(
        graph.nodes, "bert", inputs,
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", "tokens", head_width(weights, verdict) if head else width])],
        graph.initializers)
    return helper.make_model(model, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def verdict_layers(weights: dict[str, np.ndarray]) -> int:
    """How many layers a reader's verdict branch has ("verdict.layer.<i>.*"; 0: none)."""
    return len({name.split(".")[2] for name in weights if name.startswith("verdict.layer.")})


def head_width(weights: dict[str, np.ndarray], verdict: bool = True) -> int:
    """The reader graph's logits per token: the span head's, then (`verdict`) the verdict branch's three."""
    return weights["qa_outputs.weight"].shape[0] + (weights["verdict.head.weight"].shape[0]
                                                    if verdict and "verdict.head.weight" in weights else 0)


def packed(input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> dict[str, np.ndarray]:
    """A padded batch as the packed graph's inputs: its real tokens end to end, and where each
    goes. Int8 activations are scaled over the tokens a product reads, so padding no longer
    counts; the logits are as close to fp32 as the padded graph's (mean |error| 0.112 both).

    >>> {k: v.tolist() for k, v in packed(np.array([[5, 6], [7, 0]]), np.array([[1, 1], [1, 0]]),
    ...                                   np.zeros((2, 2), dtype=np.int64)).items()}  # doctest: +NORMALIZE_WHITESPACE
    {'input_ids': [5, 6, 7], 'token_type_ids': [0, 0, 0], 'position_ids': [0, 1, 0],
     'attention_mask': [[1, 1], [1, 0]], 'to_padded': [[0, 1], [2, 0]], 'to_packed': [0, 1, 2]}
    """
    real = attention_mask.astype(bool)
    to_padded = np.zeros(real.shape, dtype=np.int64)
    to_padded[real] = np.arange(int(real.sum()))
    positions = np.broadcast_to(np.arange(real.shape[1], dtype=np.int64), real.shape)
    return {"input_ids": input_ids[real], "token_type_ids": token_type_ids[real], "position_ids": positions[real],
            "attention_mask": attention_mask, "to_padded": to_padded,
            "to_packed": np.flatnonzero(real).astype(np.int64)}


def load_weights(folder: Path, overlay: Path | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """(weights, config) of the BERT or MPNet in `folder`, a trained reader's tensors laid over them (adapters merged)."""
    from safetensors.numpy import load_file

    from qa.models.adapters import merged_lora

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    weights = load_file(str(folder / "model.safetensors"))
    if overlay is not None:
        for name, tensor in reader_weights(overlay).items():
            weights[name.removeprefix("bert.").removeprefix("mpnet.")] = tensor
    return merged_lora(weights), config


SCALE = "_scale"  # a matrix stored in 8 bits has its rows' scales beside it, under its name + SCALE


def reader_weights(path: Path) -> dict[str, np.ndarray]:
    """A trained reader's tensors (fp16, or matrices in 8 bits: `to_int8`) as fp32, by name."""
    from safetensors.numpy import load_file

    stored = load_file(str(path))
    return {name: (tensor.astype(np.float32) * stored[name + SCALE].astype(np.float32) if tensor.dtype == np.int8
                   else tensor.astype(np.float32))
            for name, tensor in stored.items() if not name.endswith(SCALE)}


def to_int8(weights: dict[str, np.ndarray], smallest: int = 65_536) -> dict[str, np.ndarray]:
    """`weights` with each matrix of at least `smallest` values stored in 8 bits, a scale per row
    (symmetric, per output channel: the grid ONNX Runtime's `int8` quantisation puts them on
    anyway), halving a reader's file (an MPNet reader's six trained layers: 85 → 43 MB).

    >>> w = to_int8({"m.weight": np.array([[1.0, -0.5], [0.25, 0.0]]), "m.bias": np.ones(2)}, smallest=4)
    >>> w["m.weight"].tolist(), [round(float(x), 5) for x in w["m.weight_scale"].ravel()], w["m.bias"].dtype.name
    ([[127, -64], [127, 0]], [0.00787, 0.00197], 'float16')
    """
    out: dict[str, np.ndarray] = {}
    for name, tensor in weights.items():
        tensor = np.asarray(tensor, dtype=np.float32)
        if tensor.ndim == 2 and tensor.size >= smallest:
            scale = np.maximum(np.abs(tensor).max(axis=1, keepdims=True), 1e-12) / 127.0
            out[name] = np.clip(np.round(tensor / scale), -127, 127).astype(np.int8)
            out[name + SCALE] = scale.astype(np.float32)
        else:
            out[name] = tensor.astype(np.float16)
    return out


def load_bert(folder: Path, overlay: Path | None, head: bool, threads: int, cache_dir: Path | None,
              precision: str = "fp32", spin: bool = False, verdict: bool = True) -> OnnxBert:
    """The BERT in `folder` (with `overlay` laid over it) as an ONNX Runtime session in `precision`
    (the exact fp32 graph unless "int8" is asked for), its graph read from the cache or built
    (and cached); a damaged cached graph is built again. `spin`: see `OnnxBert`; `verdict`: see `bert_graph`."""
    graph = graph_file(folder, overlay, head, cache_dir, precision, verdict)
    try:
        return OnnxBert(graph, threads, spin)
    except Exception:  # noqa: BLE001 - a cached file cut short or damaged: build it again
        if not isinstance(graph, str):
            raise
        log.info("the cached ONNX graph %s could not be read; building it again", graph)
        Path(graph).unlink(missing_ok=True)
        return OnnxBert(graph_file(folder, overlay, head, cache_dir, precision, verdict), threads, spin)


def int8(model: bytes) -> bytes:
    """`model` with its matrix products in 8-bit integers (weights per output channel, activations
    quantised as they come): ~2× faster on CPUs with VNNI."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(model)
        logging.disable(logging.WARNING)  # the quantiser's advice to pre-process, on the root logger
        try:
            quantize_dynamic(source, target, op_types_to_quantize=["MatMul"], per_channel=True,
                             weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        return target.read_bytes()


def graph_file(folder: Path, overlay: Path | None, head: bool, cache_dir: Path | None,
               precision: str = "fp32", verdict: bool = True) -> str | bytes:
    """The ONNX graph for these weights: the cached file's path, or (built now) the graph's
    bytes when there is no cache or it cannot be written. The name covers every input, so a
    changed weight file or graph version is a different file."""
    sources = [folder / "model.safetensors", folder / "config.json"] + ([overlay] if overlay else [])
    which = hashlib.sha256(repr((head, precision, [str(p.resolve()) for p in sources])
                                + (() if verdict else ("span head only",))).encode()).hexdigest()[:16]
    version = hashlib.sha256(repr((GRAPH_VERSION, [(p.stat().st_size, p.stat().st_mtime_ns) for p in sources])
                                  ).encode()).hexdigest()[:16]
    cached = cache_dir / "onnx" / f"bert-{which}-{version}.onnx" if cache_dir else None
    if cached is not None and cached.is_file():
        with contextlib.suppress(OSError):
            os.utime(cached)  # last used now: see `UNUSED_GRAPH_DAYS`
        return str(cached)
    weights, config = load_weights(folder, overlay)
    model = bert_graph(weights, config, head, verdict).SerializeToString()
    if precision == "int8":
        model = int8(model)
    if cached is None:
        return model
    partial = cached.with_name(f".{cached.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(model)
        os.replace(partial, cached)
        unused_since = time.time() - UNUSED_GRAPH_DAYS * 86_400
        for other in cached.parent.glob("bert-*.onnx"):  # the same model's of older weights, or long unused
            with contextlib.suppress(OSError):  # e.g. deleted meanwhile by another process
                if other != cached and (other.name.startswith(f"bert-{which}-") or other.stat().st_mtime < unused_since):
                    other.unlink()
    except OSError as error:
        log.info("could not cache the ONNX graph in %s (%s); it is rebuilt on each start", cached.parent, error)
        with contextlib.suppress(OSError):
            partial.unlink()
        return model
    return str(cached)


class OnnxBert:
    """An ONNX Runtime session over a `bert_graph` (a file or bytes); `run` is safe to call from
    several threads."""

    def __init__(self, model: str | bytes, threads: int, spin: bool = False) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle threads sleep instead of spinning, except in the session that runs last in an answer
        # (the reader, `spin`): two spinning pools on the same cores slow each other down (evidence
        # answer p50 ~70 → ~107 ms here), the reader's alone saves ~4 ms. Its threads stop spinning
        # as soon as a run returns, leaving the cores to the next question's embedding (~2 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        # ORT's fused SkipLayerNormalization is slow on this graph (~1 ms a call for 8×120 tokens,
        # its unfused Add + LayerNormalization ~0.4 ms): without the fusion the reader runs 58 ms
        # instead of 70 (8 windows), the embedder 191 instead of 214 ms (32 sentences); the logits
        # are as close to fp32 (mean |error| 0.104 either way).
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"],
                                                    disabled_optimizers=["SkipLayerNormFusion"])
        self.reads_packed = "to_padded" in {i.name for i in self.session.get_inputs()}

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        """The output for a padded batch (the packed graph packs it first)."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self.session.run(None, packed(**inputs) if self.reads_packed else inputs)[0]
