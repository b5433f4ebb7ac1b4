"""The translation model trained on the page (`encoder.translation.train_translation`): the
issue's run, its time and what it learned, and its steps per second against a plain PyTorch
loop of the same model, timed in the same run.

Targets, on the 2-core CPU: 2,000 steps of d_model 64, 4 heads, 2 + 2 layers in ≤ 90 s (training,
then the held-out evaluation), held-out exact match ≥ 95 %, translate("我爱你") == "I love you",
alignment ≥ 0.8; the plain loop at most 1.2 × as fast per step.

The plain loop is what anyone would write: `nn.Embedding` × √d_model plus the same sinusoids,
`nn.Transformer` (batch_first, no dropout) with its causal and padding masks, a linear readout,
Adam, the same batches. `train_translation` also logs every 25 steps and traces the probe every
100, as the page shows them; that is in its time.

    python -m bench.translation
    python -m bench.translation --device cuda
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from encoder import resolve_device, sinusoidal_positions
from encoder.encoder_decoder import EncoderDecoderConfig
from encoder.translation import all_pairs, source_vocabulary, target_vocabulary, train_translation

CONFIG = EncoderDecoderConfig(d_model=64, n_heads=4, n_encoder_layers=2, n_decoder_layers=2, seed=0)


def plain_loop(config: EncoderDecoderConfig, steps: int, device: torch.device, batch: int = 64) -> float:
    """Steps per second of the plain loop on the whole corpus."""
    torch.manual_seed(config.seed)
    sources = {c: i + 1 for i, c in enumerate(source_vocabulary())}  # 0 is padding
    targets = {w: i + 3 for i, w in enumerate(target_vocabulary())}  # 0 padding, 1 start, 2 end
    pairs = all_pairs()
    width_s = max(len(p.source) for p in pairs)
    width_t = max(len(p.target) for p in pairs) + 2
    source = torch.tensor([[sources[c] for c in p.source] + [0] * (width_s - len(p.source)) for p in pairs])
    target = torch.tensor(
        [[1, *[targets[w] for w in p.target], 2] + [0] * (width_t - len(p.target) - 2) for p in pairs]
    )
    source, target = source.to(device), target.to(device)
    d = config.d_model
    source_table = nn.Embedding(len(sources) + 1, d).to(device)
    target_table = nn.Embedding(len(targets) + 3, d).to(device)
    transformer = nn.Transformer(d, config.n_heads, config.n_encoder_layers, config.n_decoder_layers,
                                 config.d_ff, dropout=0.0, batch_first=True, device=device)  # fmt: skip
    readout = nn.Linear(d, len(targets) + 3).to(device)
    modules = (source_table, target_table, transformer, readout)
    optimizer = torch.optim.Adam([p for m in modules for p in m.parameters()], lr=2e-3, betas=(0.9, 0.98))
    positions = sinusoidal_positions(max(width_s, width_t), d).to(device)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        rows = torch.randint(len(pairs), (batch,), generator=generator).to(device)
        s, t = source[rows], target[rows]
        s = s[:, : int((s != 0).sum(dim=1).max())]
        t = t[:, : int((t != 0).sum(dim=1).max())]
        inputs, wanted = t[:, :-1], t[:, 1:]
        mask = nn.Transformer.generate_square_subsequent_mask(inputs.shape[1], device=device)
        hidden = transformer(
            source_table(s) * math.sqrt(d) + positions[: s.shape[1]],
            target_table(inputs) * math.sqrt(d) + positions[: inputs.shape[1]],
            tgt_mask=mask, tgt_is_causal=True, src_key_padding_mask=s == 0, memory_key_padding_mask=s == 0,
        )  # fmt: skip
        loss = F.cross_entropy(readout(hidden).flatten(0, 1), wanted.flatten(), ignore_index=0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--plain-steps", type=int, default=300, help="steps of each plain-loop round")
    parser.add_argument("--rounds", type=int, default=3, help="plain-loop rounds around the run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the app trains with 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    plain = [plain_loop(CONFIG, args.plain_steps, device)]
    start = time.perf_counter()
    result = train_translation(CONFIG, args.steps, device=device)
    seconds = time.perf_counter() - start
    plain += [plain_loop(CONFIG, args.plain_steps, device) for _ in range(args.rounds - 1)]
    said = result.translate("我爱你")
    print(f"translation on {device.type}, d_model 64, 4 heads, 2 + 2 layers, batch 64, {args.steps} steps")
    print(f"  train_translation: {seconds:6.1f} s in all (target <= 90), {result.steps_per_second:5.1f} steps/s")
    print(f"  held-out exact match: {result.accuracy:.3f} on {len(result.held_out)} sentences (target >= 0.95)")
    print(f"  alignment (best head of the last decoder layer): {result.alignment:.3f} (target >= 0.8)")
    print(f"  translate('我爱你') = {said!r} (target 'I love you')")
    ratio = statistics.median(plain) / result.steps_per_second
    print(f"  plain loop: {statistics.median(plain):5.1f} steps/s (median of {args.rounds} rounds)")
    print(f"  plain / train_translation: {ratio:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
