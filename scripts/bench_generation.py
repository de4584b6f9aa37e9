"""The same GGUF file and prompt through both local runtimes: llama.cpp (xllamacpp) and
transformers (de-quantised). Prints load time, first token and whole answer (p50 of --runs after
one warm-up), and peak memory of each, each in a fresh process. Prints figures, asserts nothing.

    .venv/bin/python scripts/bench_generation.py [--model smollm2] [--runs 5] [--tokens 64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

MESSAGES = [
    {"role": "system", "content": "Answer from the passage in one short sentence and cite it as [1]."},
    {"role": "user", "content": "Passage [1]: Japan and South Korea formally established diplomatic relations in "
                                "December 1965, under the Treaty on Basic Relations.\n\nQuestion: When did Japan "
                                "and South Korea establish diplomatic relations?"},
]
ONE_RUNTIME = """
import json, resource, sys, time
from qa.models.generate import LlamaCppGenerator, TransformersGenerator
runtime, model, runs, tokens = {runtime!r}, {model!r}, {runs}, {tokens}
began = time.perf_counter()
g = LlamaCppGenerator(model, 2) if runtime == "llama.cpp" else TransformersGenerator(model, 2)
g.warm_up()
load = time.perf_counter() - began
first, whole, text = [], [], ""
for _ in range(runs + 1):
    t = time.perf_counter(); seen = None; text = ""
    for piece in g.stream({messages!r}, tokens):
        seen = seen or time.perf_counter() - t
        text += piece
    first.append(seen); whole.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"load": load, "first": first[1:], "whole": whole[1:], "peak_mb": peak, "text": text}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    print(f"{'runtime':<12} {'load s':>7} {'first token p50 ms':>19} {'whole p50 s':>12} {'peak MB':>8}  answer")
    for runtime in ("llama.cpp", "transformers"):
        code = ONE_RUNTIME.format(runtime=runtime, model=args.model, runs=args.runs,
                                  tokens=args.tokens, messages=MESSAGES)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
        if out.returncode:
            print(f"{runtime:<12} failed: {out.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{runtime:<12} {r['load']:7.1f} {statistics.median(r['first']) * 1000:19.0f} "
              f"{statistics.median(r['whole']):12.2f} {r['peak_mb']:8.0f}  {r['text'][:60]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
