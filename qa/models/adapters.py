"""Low-rank adapters (LoRA) of a trained reader, merged into the matrices they change: an adapter
reader ships only its adapters (`scripts/train_reader.py`, MPNet legs from 8 on), and the ONNX graph
is built from the merged weights, so reading costs what any reader of that size costs."""

from __future__ import annotations

import numpy as np

LORA_A, LORA_B = ".lora_A", ".lora_B"  # a low-rank adapter's factors, beside the matrix they change


def merged_lora(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`weights` with each low-rank adapter (X.lora_A, X.lora_B) merged into its matrix:
    X.weight + X.lora_B @ X.lora_A (trained with alpha = rank: a scale of 1).

    >>> w = merged_lora({"q.weight": np.eye(2), "q.lora_A": np.array([[1.0, 0.0]]), "q.lora_B": np.array([[0.0], [2.0]])})
    >>> sorted(w), w["q.weight"].tolist()
    (['q.weight'], [[1.0, 0.0], [2.0, 1.0]])
    """
    out = {name: tensor for name, tensor in weights.items() if not name.endswith((LORA_A, LORA_B))}
    for name in weights:
        if name.endswith(LORA_A):
            stem = name.removesuffix(LORA_A)
            out[stem + ".weight"] = (out[stem + ".weight"].astype(np.float32)
                                     + weights[stem + LORA_B].astype(np.float32) @ weights[name].astype(np.float32))
    return out
