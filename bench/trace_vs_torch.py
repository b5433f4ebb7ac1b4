"""How much a full trace costs against torch.nn.TransformerEncoder holding the same weights.

Both run in this process on the same input, in eval mode without gradients, interleaved
round by round so that machine noise hits both alike. Prints the median time of each and
their ratio; the target is a ratio of at most 1.1 on the CPU.

    python bench/trace_vs_torch.py            # the two standard shapes
    python bench/trace_vs_torch.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from encoder import from_torch, resolve_device

SHAPES = [  # (tokens, d_model, heads, layers)
    (32, 512, 8, 6),
    (128, 768, 12, 12),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def _seconds(run: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - start


def measure(
    tokens: int, d_model: int, heads: int, layers: int, device: torch.device, rounds: int
) -> tuple[list[float], list[float]]:
    """Seconds per round of (torch forward, our trace) for one shape."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, batch_first=True)
    reference = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).eval().to(device)
    ours = from_torch(reference, device=device)
    x = torch.randn(tokens, d_model, device=device)
    batch = x[None]  # (1, n, d_model): torch's layout

    def torch_forward() -> None:
        with torch.inference_mode():
            reference(batch)

    def our_trace() -> None:
        ours.trace(x)

    for run in (torch_forward, our_trace):  # warm-up: allocator, kernels, caches
        for _ in range(3):
            run()
    torch_times, our_times = [], []
    for _ in range(rounds):  # interleave so drifting load affects both equally
        torch_times.append(_seconds(torch_forward, device))
        our_times.append(_seconds(our_trace, device))
    return torch_times, our_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} rounds={args.rounds}")
    print("median and minimum milliseconds per forward; ratio = trace / torch")
    header = ("tokens", "d_model", "heads", "layers", "torch med", "trace med", "ratio med", "ratio min")
    print(" ".join(f"{h:>9}" for h in header))
    for shape in SHAPES:
        torch_times, our_times = measure(*shape, device=device, rounds=args.rounds)
        torch_med, ours_med = statistics.median(torch_times), statistics.median(our_times)
        cells = [*shape, f"{torch_med * 1e3:.2f}", f"{ours_med * 1e3:.2f}"]
        cells += [f"{ours_med / torch_med:.3f}", f"{min(our_times) / min(torch_times):.3f}"]
        print(" ".join(f"{c:>9}" for c in cells))


if __name__ == "__main__":
    main()
