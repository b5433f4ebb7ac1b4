"""Steps per second of `encoder.training.train` against a plain PyTorch training loop of the same
model, timed in the same run. Target: the plain loop at most 1.2 times as fast.

The plain loop is what anyone would write: `nn.Embedding`, the same sinusoidal positions,
`nn.TransformerEncoder` (batch_first, no dropout) and a linear readout, AdamW, the same batch
and learning rate. `train` also logs every 25 steps and traces the probe every 100, as the page
shows them; that is in its time.

    python -m bench.training                      # CPU, d_model 32, 2 heads, 2 layers
    python -m bench.training --device cuda --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from encoder import EncoderConfig, resolve_device, sinusoidal_positions
from encoder.training import IGNORE, SEQUENCE_LENGTH, TASKS, train


def plain_loop(task_name: str, config: EncoderConfig, steps: int, device: torch.device, batch: int = 64) -> float:
    """Steps per second of the plain loop on the same task and shape."""
    task = TASKS[task_name]
    torch.manual_seed(config.seed)
    embedding = nn.Embedding(len(task.vocabulary), config.d_model).to(device)
    layer = nn.TransformerEncoderLayer(
        config.d_model,
        config.n_heads,
        dim_feedforward=config.d_ff,
        dropout=0.0,
        activation=config.activation,
        batch_first=True,
        norm_first=config.layer_norm == "pre",
    )
    encoder = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False).to(device)
    readout = nn.Linear(config.d_model, len(task.vocabulary)).to(device)
    positions = sinusoidal_positions(SEQUENCE_LENGTH, config.d_model).to(device)
    parameters = [*embedding.parameters(), *encoder.parameters(), *readout.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=3e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        inputs, targets = task.sample(generator, batch, SEQUENCE_LENGTH)
        inputs, targets = inputs.to(device), targets.to(device)
        logits = readout(encoder(embedding(inputs) + positions))
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="previous", choices=sorted(TASKS))
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the app trains with 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    config = EncoderConfig(d_model=32, n_heads=2, n_layers=2, seed=0)
    ours, plain = [], []
    for _ in range(args.rounds):  # interleaved, so a busy moment of the machine hits both
        ours.append(train(args.task, config, args.steps, device=device).steps_per_second)
        plain.append(plain_loop(args.task, config, args.steps, device))
    ratio = statistics.median(p / o for p, o in zip(plain, ours, strict=True))
    print(f"{args.task} on {device.type}, d_model 32, 2 heads, 2 layers, batch 64, {args.steps} steps x {args.rounds}")
    print(f"  train():    {statistics.median(ours):7.0f} steps/s (median)")
    print(f"  plain loop: {statistics.median(plain):7.0f} steps/s (median)")
    print(f"  plain / train(): {ratio:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
