"""Print a trace from the command line: `python -m encoder "我爱你" --d-model 64 --heads 4`.

A quick look at the numbers without a browser, and a smoke test of an installation.
"""

from __future__ import annotations

import argparse
import sys

import torch

from encoder import Encoder, EncoderConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m encoder", description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="?", default="我爱你")
    parser.add_argument("--d-model", type=int, default=EncoderConfig.d_model)
    parser.add_argument("--heads", type=int, default=EncoderConfig.n_heads)
    parser.add_argument("--layers", type=int, default=EncoderConfig.n_layers)
    parser.add_argument("--seed", type=int, default=EncoderConfig.seed)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    args = parser.parse_args(argv)
    try:
        config = EncoderConfig(d_model=args.d_model, n_heads=args.heads, n_layers=args.layers, seed=args.seed)
        model = Encoder(config, device=args.device)
        trace = model.trace_text(args.text).to("cpu")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    torch.set_printoptions(precision=3, sci_mode=False)
    print(f"tokens: {trace.tokens}   device: {model.device}   d_k = {config.d_head}")
    layer = trace.layers[0]
    for name in ("q", "scores", "scaled_scores", "weights", "context"):
        print(f"\nlayer 0, head 0, {name} {tuple(getattr(layer, name).shape[1:])}:\n{getattr(layer, name)[0]}")
    print(f"\noutput {tuple(trace.output.shape)}, first 6 dims:\n{trace.output[:, :6]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
