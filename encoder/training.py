"""Train a small encoder on a task whose right answer is a pattern of attention, and keep how
its heads looked on a fixed probe as it learned.

Random weights show the arithmetic and a trained checkpoint shows finished attention; this is
where the patterns come from. Each task is over the digit tokens "0".."9" and has a known
ideal pattern: `previous` (the output at position i is the input at i − 1: the sub-diagonal),
`reverse` (the input at n − 1 − i: the anti-diagonal), `sort` (the i-th smallest input: each
query on the key of rank i) and `induction` (the token that followed the previous occurrence
of the current token: a second-layer head on the key after that occurrence).

Training runs on a fused, batched path (`fused_forward`: `F.scaled_dot_product_attention`,
nothing kept); only the probe is traced (`Encoder.trace_tokens`), every `snapshot_every` steps.
The trained model is an `Encoder` like any other, with a digit vocabulary as its front end
(`DigitEmbedding`), so every view of the app can inspect it.

>>> from encoder import EncoderConfig
>>> from encoder.training import train
>>> result = train("previous", EncoderConfig(d_model=32, n_heads=2, n_layers=2), 50, device="cpu")
>>> result.history[-1].step
50
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from encoder.config import EncoderConfig
from encoder.embeddings import PositionalTextEmbedding
from encoder.model import Encoder, EncoderLayer, resolve_device
from encoder.tokenizer import check_token_count

DIGITS: tuple[str, ...] = tuple("0123456789")
SEQUENCE_LENGTH = 8  # what the tasks train and probe on
IGNORE = -100  # a target position with no answer (the first token of `previous`): not in the loss


@dataclass(frozen=True)
class Task:
    """A task: its vocabulary, its answers, and the attention that solves it.

    For inputs (batch, n) of token ids, `targets(inputs)` gives the answer at every position
    (batch, n), `IGNORE` where there is none, and `ideal(inputs)` (batch, n, n): for each query
    row the weights a head that solves the task puts on the keys (rows of ignored queries are 0).
    """

    name: str
    targets: Callable[[torch.Tensor], torch.Tensor]
    ideal: Callable[[torch.Tensor], torch.Tensor]
    vocabulary: tuple[str, ...] = DIGITS
    min_layers: int = 1  # a pattern that needs this many layers to form (induction: 2)

    def sample(self, generator: torch.Generator, batch: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), each (batch, n): uniformly random tokens and their answers."""
        inputs = torch.randint(len(self.vocabulary), (batch, n), generator=generator)
        return inputs, self.targets(inputs)


def _previous_targets(inputs: torch.Tensor) -> torch.Tensor:
    targets = torch.full_like(inputs, IGNORE)
    targets[:, 1:] = inputs[:, :-1]
    return targets


def _previous_ideal(inputs: torch.Tensor) -> torch.Tensor:
    batch, n = inputs.shape
    ideal = torch.zeros(batch, n, n)
    rows = torch.arange(1, n)
    ideal[:, rows, rows - 1] = 1.0
    return ideal


def _reverse_targets(inputs: torch.Tensor) -> torch.Tensor:
    return inputs.flip(1)


def _reverse_ideal(inputs: torch.Tensor) -> torch.Tensor:
    batch, n = inputs.shape
    return torch.eye(n).flip(1).expand(batch, n, n).clone()


def _sort_targets(inputs: torch.Tensor) -> torch.Tensor:
    return inputs.sort(dim=1, stable=True).values


def _sort_ideal(inputs: torch.Tensor) -> torch.Tensor:
    """Query i on the key that holds the i-th smallest value; equal values share the weight."""
    ranked = inputs.sort(dim=1, stable=True).values  # (batch, n): the value query i outputs
    same = (inputs[:, None, :] == ranked[:, :, None]).float()  # (batch, n queries, n keys)
    return same / same.sum(dim=-1, keepdim=True)


def _previous_occurrence(inputs: torch.Tensor) -> torch.Tensor:
    """(batch, n) the position of the latest earlier occurrence of each token, -1 where none."""
    batch, n = inputs.shape
    same = inputs[:, :, None] == inputs[:, None, :]  # (batch, query, key)
    earlier = torch.ones(n, n, dtype=torch.bool).tril(-1)  # key < query
    positions = torch.arange(n).expand(batch, n, n)
    return torch.where(same & earlier, positions, -1).amax(dim=-1)


def _induction_targets(inputs: torch.Tensor) -> torch.Tensor:
    before = _previous_occurrence(inputs)  # (batch, n)
    follower = (before + 1).clamp(max=inputs.shape[1] - 1)  # (batch, n); before < query, so in range
    targets = inputs.gather(1, follower)
    return torch.where(before >= 0, targets, torch.full_like(targets, IGNORE))


def _induction_ideal(inputs: torch.Tensor) -> torch.Tensor:
    batch, n = inputs.shape
    before = _previous_occurrence(inputs)
    ideal = torch.zeros(batch, n, n)
    rows, queries = torch.nonzero(before >= 0, as_tuple=True)
    ideal[rows, queries, before[rows, queries] + 1] = 1.0
    return ideal


TASKS: dict[str, Task] = {
    "previous": Task("previous", _previous_targets, _previous_ideal),
    "reverse": Task("reverse", _reverse_targets, _reverse_ideal),
    "sort": Task("sort", _sort_targets, _sort_ideal),
    "induction": Task("induction", _induction_targets, _induction_ideal, min_layers=2),
}


class DigitEmbedding(PositionalTextEmbedding):
    """A trained model's front end: one learned vector per vocabulary token, and the config's
    positional encoding (a learned table, sinusoids, or none). Text is split into its characters,
    spaces dropped: "3 1 4" and "314" are the same three tokens."""

    def __init__(self, config: EncoderConfig, vocabulary: Sequence[str] = DIGITS) -> None:
        super().__init__(config)
        self.vocabulary = tuple(vocabulary)
        self.index = {token: i for i, token in enumerate(self.vocabulary)}
        self.token_table = nn.Parameter(torch.empty(len(self.vocabulary), config.d_model))

    def tokenize(self, text: str, max_tokens: int | None) -> list[str]:
        return check_token_count([character for character in text if not character.isspace()], max_tokens)

    def ids(self, tokens: Sequence[str]) -> torch.Tensor:
        """(n,) each token's row of the table; a token outside the vocabulary gets row 0 (see `unknown`)."""
        return torch.tensor([self.index.get(token, 0) for token in tokens], device=self.token_table.device)

    def embed(self, tokens: Sequence[str]) -> torch.Tensor:
        vectors = self.token_table[self.ids(tokens)].detach()  # (n, d_model)
        known = torch.tensor([token in self.index for token in tokens], device=vectors.device)
        return vectors * known[:, None]  # an unknown token is the zero vector

    def unknown(self, tokens: Sequence[str]) -> list[bool]:
        return [token not in self.index for token in tokens]


def _fused_layer(layer: EncoderLayer, x: torch.Tensor, causal: bool, need_weights: bool):
    """One layer on a batch x (batch, n, d_model), as `EncoderLayer.trace` computes it, nothing kept;
    with `need_weights`, also its softmax weights (batch, heads, n, n)."""
    batch, n, d_model = x.shape
    heads = layer.n_heads
    d_head = d_model // heads
    attn_input = layer.attention_input(x)
    q, k, v = layer.qkv_proj(attn_input).view(batch, n, 3, heads, d_head).permute(2, 0, 3, 1, 4)  # 3 × (b, h, n, dh)
    scale = (1 / math.sqrt(d_head) if layer.scale_scores else 1.0) / layer.temperature
    weights = None
    if need_weights:
        scores = (q @ k.transpose(-2, -1)) * scale  # (batch, heads, n, n)
        if causal:
            scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool, device=x.device).tril(), float("-inf"))
        weights = scores.softmax(dim=-1)
        context = weights @ v
    else:
        context = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)  # (batch, heads, n, dh)
    attn_residual = x + layer.out_proj(context.transpose(1, 2).reshape(batch, n, d_model))
    stream, ffn_input = layer.around_ffn(attn_residual)
    output = stream + layer.ffn_out(layer.activation(layer.ffn_in(ffn_input)))
    return layer.layer_output(output), weights


def fused_forward(
    model: Encoder, tokens: torch.Tensor, *, need_weights: bool = False
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The encoder on a batch of token ids (batch, n): its output (batch, n, d_model) and, with
    `need_weights`, every layer's weights (batch, heads, n, n). What training runs: the same
    function as `Encoder.trace`, batched and fused, with gradients."""
    embedding = model.text_embedding
    n = tokens.shape[1]
    x = embedding.token_table[tokens] + embedding.positions(n, tokens.device)  # (batch, n, d_model)
    weights = []
    for layer in model.layers:
        x, layer_weights = _fused_layer(layer, x, model.config.causal, need_weights)
        weights.append(layer_weights)
    if model.final_norm is not None:
        x = model.final_norm(x)
    return x, weights


@dataclass(frozen=True)
class LoggedStep:
    step: int
    loss: float  # the training batch's mean cross-entropy
    accuracy: float  # the training batch's share of right answers


@dataclass(frozen=True)
class Snapshot:
    step: int
    weights: np.ndarray  # (layers, heads, n, n): every head's attention on the probe


@dataclass
class TrainingResult:
    task: Task
    model: Encoder  # in eval mode, no gradients: inspect it like any other
    readout: nn.Linear  # d_model -> vocabulary: the answer at every position
    probe: list[str]  # the fixed sequence the snapshots show
    history: list[LoggedStep] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    steps_per_second: float = 0.0
    device: str = "cpu"
    stopped: bool = False  # the callback asked to stop before the last step

    def evaluate(self, sequences: int = 1024, seed: int = 12345) -> tuple[float, np.ndarray]:
        """Held-out accuracy on `sequences` fresh random sequences, and per head (layers, heads)
        the mean weight its queries put on the task's ideal keys."""
        return evaluate(self.model, self.readout, self.task, sequences=sequences, seed=seed)


@torch.no_grad()
def evaluate(
    model: Encoder, readout: nn.Linear, task: Task, *, sequences: int = 1024, seed: int = 12345
) -> tuple[float, np.ndarray]:
    generator = torch.Generator().manual_seed(seed)
    inputs, targets = task.sample(generator, sequences, SEQUENCE_LENGTH)
    inputs, targets = inputs.to(model.device), targets.to(model.device)
    output, weights = fused_forward(model, inputs, need_weights=True)
    predictions = readout(output).argmax(dim=-1)
    answered = targets != IGNORE
    accuracy = float((predictions == targets)[answered].float().mean())
    ideal = task.ideal(inputs.cpu()).to(model.device)  # (batch, n, n)
    return accuracy, weight_on_ideal(torch.stack(weights, dim=1), ideal).cpu().numpy()  # (layers, heads)


def weight_on_ideal(weights: torch.Tensor, ideal: torch.Tensor) -> torch.Tensor:
    """(layers, heads) the mean weight each head's queries put on the ideal keys, over the queries
    the task answers: weights (batch, layers, heads, n, n), ideal (batch, n, n)."""
    rows = ideal.sum(dim=-1) > 0  # (batch, n): queries the task has an answer for
    on_ideal = (weights * ideal[:, None, None]).sum(dim=-1)  # (batch, layers, heads, n)
    return (on_ideal * rows[:, None, None]).sum(dim=(0, 3)) / rows.sum()


def probe_ideal(result: TrainingResult) -> np.ndarray:
    """(n, n) the task's ideal pattern on the result's probe."""
    ids = torch.tensor([[result.task.vocabulary.index(token) for token in result.probe]])
    return result.task.ideal(ids)[0].numpy()


def probe_scores(result: TrainingResult, snapshot: Snapshot) -> np.ndarray:
    """(layers, heads) each head's weight on the ideal keys of the probe, at a snapshot."""
    ideal = torch.from_numpy(probe_ideal(result))[None]
    return weight_on_ideal(torch.from_numpy(snapshot.weights)[None], ideal).numpy()


def train(
    task: str | Task,
    config: EncoderConfig,
    steps: int,
    *,
    device: str | torch.device | None = None,
    seed: int = 0,
    batch: int = 64,
    learning_rate: float = 3e-3,
    log_every: int = 25,
    snapshot_every: int = 100,
    callback: Callable[[LoggedStep, Snapshot | None], bool | None] | None = None,
    on_start: Callable[[TrainingResult], None] | None = None,
) -> TrainingResult:
    """Train a new encoder of shape `config` on `task` for `steps` steps of AdamW (one batch of
    `batch` random sequences each) and return it with its history and probe snapshots.

    Deterministic for a seed on the CPU: the weights come from `config.seed`, the batches and the
    probe from `seed`. `callback(logged, snapshot)` runs every `log_every` steps (with the
    snapshot when one was taken); returning False stops the training there. `on_start` gets
    the result before the first step: its `history` and `snapshots` grow as training goes, so
    another thread (a page) can show them live.
    """
    task = TASKS[task] if isinstance(task, str) else task
    if steps < 1:
        raise ValueError(f"steps={steps!r} is invalid: train for at least one step")
    target = resolve_device(device)
    generator = torch.Generator().manual_seed(seed)
    embedding = DigitEmbedding(config, task.vocabulary)
    model = Encoder(config, device="cpu", text_embedding=embedding, name=f"trained on {task.name}")
    readout = nn.Linear(config.d_model, len(task.vocabulary))
    with torch.no_grad():  # the token table and the readout from the seed too (Encoder zeroes what it does not know)
        weights_generator = torch.Generator().manual_seed(config.seed + 1)
        model.text_embedding.token_table.normal_(generator=weights_generator)
        nn.init.xavier_uniform_(readout.weight, generator=weights_generator)
        readout.bias.zero_()
    model.to(target)
    readout.to(target)
    parameters = [*model.parameters(), *readout.parameters()]
    for parameter in parameters:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.0)
    probe_ids, _ = task.sample(torch.Generator().manual_seed(seed + 7), 1, SEQUENCE_LENGTH)
    probe = [task.vocabulary[i] for i in probe_ids[0].tolist()]
    result = TrainingResult(task, model, readout, probe, device=target.type)

    def snapshot(step: int) -> Snapshot:
        trace = model.trace_tokens(probe)
        return Snapshot(step, torch.stack([layer.weights for layer in trace.layers]).cpu().numpy())

    result.snapshots.append(snapshot(0))
    if on_start is not None:
        on_start(result)
    start = time.perf_counter()
    step = 0
    for step in range(1, steps + 1):
        inputs, targets = task.sample(generator, batch, SEQUENCE_LENGTH)
        inputs, targets = inputs.to(target), targets.to(target)
        output, _ = fused_forward(model, inputs)
        logits = readout(output)  # (batch, n, vocabulary)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % log_every == 0 or step == steps:
            answered = targets != IGNORE
            accuracy = (logits.argmax(dim=-1) == targets)[answered].float().mean()
            logged = LoggedStep(step, float(loss.detach()), float(accuracy))
            result.history.append(logged)
            taken = snapshot(step) if step % snapshot_every == 0 or step == steps else None
            if taken is not None:
                result.snapshots.append(taken)
            if callback is not None and callback(logged, taken) is False:
                result.stopped = step < steps
                break
    result.steps_per_second = step / (time.perf_counter() - start)
    for parameter in parameters:
        parameter.requires_grad_(False)
    model.eval()
    return result
