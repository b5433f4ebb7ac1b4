"""Time the largest run the caps allow (encoder.LIMITS), from building the model to the trace.

The caps exist so that this stays a few seconds on a shared 2-core server; run this after
changing them. Prints the median of a few rounds for model construction and for the trace.

    python bench/largest_run.py [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from encoder import LIMITS, Encoder, EncoderConfig, resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device)
    config = EncoderConfig(
        d_model=LIMITS.max_d_model, n_heads=LIMITS.max_heads, n_layers=LIMITS.max_layers, d_ff=LIMITS.max_d_ff
    )
    text = " ".join(f"w{i}" for i in range(LIMITS.max_tokens))
    build, trace = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        model = Encoder(config, device=device)
        build.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.trace_text(text)
        if device.type == "cuda":
            torch.cuda.synchronize()
        trace.append(time.perf_counter() - start)
    print(f"device={device} threads={torch.get_num_threads()} {LIMITS}")
    print(
        f"build model: {statistics.median(build):.2f} s   trace {LIMITS.max_tokens} tokens: "
        f"{statistics.median(trace):.2f} s   (median of {args.rounds})"
    )


if __name__ == "__main__":
    main()
