"""A Chinese → English corpus small enough to learn in a minute on a CPU, and rich enough that what
a word attends to is not the diagonal: 今天 and 昨天 come first (or after the subject) in Chinese
and last in English, a negation is one character but two English words, a verb is two characters
but one word, and the English verb changes with the person and the tense.

    我爱你            → I love you
    他昨天没看见我们    → he did not see us yesterday
    今天她不喜欢他们    → she does not like them today

Every sentence of the grammar is generated with its alignment: for each English word, the source
characters it translates. Chinese is split per character, as everywhere in the app.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from encoder.config import LIMITS
from encoder.embeddings import sinusoidal_positions
from encoder.encoder_decoder import EncoderDecoder, EncoderDecoderConfig, EncoderDecoderTrace
from encoder.errors import EncoderError
from encoder.model import resolve_device
from encoder.tokenizer import check_token_count
from encoder.trace_arrays import TraceArrays

# (Chinese, as a subject, as an object)
PEOPLE = (("我", "I", "me"), ("我们", "we", "us"), ("你", "you", "you"), ("他", "he", "him"),
          ("她", "she", "her"), ("他们", "they", "them"))  # fmt: skip
THIRD_PERSON = ("he", "she")  # "loves", "does not"
# (Chinese, base, third person, past)
VERBS = (("爱", "love", "loves", "loved"), ("喜欢", "like", "likes", "liked"), ("看见", "see", "sees", "saw"),
         ("帮助", "help", "helps", "helped"), ("认识", "know", "knows", "knew"))  # fmt: skip
TIMES = (("", ""), ("今天", "today"), ("昨天", "yesterday"))  # no time word, today, yesterday (the past)
NEGATIONS = {"": "不", "today": "不", "yesterday": "没"}  # 不 in the present, 没 with 昨天


@dataclass(frozen=True)
class Pair:
    """One sentence and its translation."""

    source: str  # the Chinese, one token per character
    target: tuple[str, ...]  # the English words
    alignment: tuple[tuple[int, ...], ...]  # for each English word, the positions of the characters it translates

    @property
    def text(self) -> str:
        """The English as the page prints it: words separated by one space."""
        return " ".join(self.target)


def _pair(parts: list[tuple[str, str | None]], english: list[tuple[str, str]]) -> Pair:
    """`parts`: the Chinese in order, each with the name of its role; `english`: (word, role)."""
    source, where = "", {}
    for chinese, role in parts:
        if role is not None:
            where[role] = tuple(range(len(source), len(source) + len(chinese)))
        source += chinese
    return Pair(source, tuple(word for word, _ in english), tuple(where[role] for _, role in english))


def sentence(subject: int, verb: int, obj: int, time: int = 0, negated: bool = False, time_first: bool = True) -> Pair:
    """One sentence of the grammar, by the index of its subject, verb, object and time word (0: none)."""
    zh_subject, en_subject, _ = PEOPLE[subject]
    zh_object, _, en_object = PEOPLE[obj]
    zh_verb, base, third, past = VERBS[verb]
    zh_time, en_time = TIMES[time]
    third_person = en_subject in THIRD_PERSON
    if negated:
        auxiliary = "did" if en_time == "yesterday" else "does" if third_person else "do"
        verb_words = [(auxiliary, "negation"), ("not", "negation"), (base, "verb")]
    else:
        form = past if en_time == "yesterday" else third if third_person else base
        verb_words = [(form, "verb")]
    chinese = [(zh_subject, "subject")]
    if zh_time:
        chinese.insert(0 if time_first else 1, (zh_time, "time"))
    if negated:
        chinese.append((NEGATIONS[en_time], "negation"))
    chinese += [(zh_verb, "verb"), (zh_object, "object")]
    english = [(en_subject, "subject"), *verb_words, (en_object, "object")]
    if en_time:
        english.append((en_time, "time"))
    return _pair(chinese, english)


def all_pairs() -> list[Pair]:
    """Every sentence of the grammar (a person never does something to themselves), in a fixed order."""
    pairs = []
    for subject, verb, obj, when, negated in itertools.product(
        range(len(PEOPLE)), range(len(VERBS)), range(len(PEOPLE)), range(len(TIMES)), (False, True)
    ):
        if subject == obj:
            continue
        for time_first in (True, False) if when else (True,):
            pairs.append(sentence(subject, verb, obj, when, negated, time_first))
    return pairs


def source_vocabulary() -> tuple[str, ...]:
    """Every Chinese character the corpus uses: a sentence with any other cannot be translated."""
    return tuple(sorted({character for pair in all_pairs() for character in pair.source}))


def target_vocabulary() -> tuple[str, ...]:
    return tuple(sorted({word for pair in all_pairs() for word in pair.target}))


# ---------------------------------------------------------------------------------------------
# The model that translates: an EncoderDecoder with token tables, positions and a readout.

BOS, EOS, PAD = "<s>", "</s>", "<pad>"  # the target's start and end, and the batch's filler
MAX_TARGET_WORDS = 12  # greedy decoding stops at this many words without an EOS (the corpus's longest is 6)


class UnknownCharactersError(EncoderError, ValueError):
    """The sentence has characters the translation model never saw: `characters` are those, and
    `vocabulary` what it knows."""

    code = "translation_unknown"

    def __init__(self, characters: Sequence[str], vocabulary: Sequence[str]) -> None:
        super().__init__(
            f"the translation model knows only {''.join(vocabulary)}; not {''.join(characters)}",
            characters="".join(characters),
            vocabulary=" ".join(vocabulary),
        )


@dataclass(frozen=True)
class Translation:
    """A sentence translated greedily, with the trace of the last step: the decoder's input is
    <s> and every word it emitted, so row t of each decoder map is what position t saw when it
    chose word t (the causal mask keeps a row from the positions after it)."""

    source: list[str]  # the Chinese characters
    words: list[str]  # the English words emitted, EOS left out
    target: list[str]  # the decoder's input: BOS, then every word but one that ended at MAX_TARGET_WORDS
    emitted: list[str]  # what each position of `target` emitted: [*words, EOS], or the MAX_TARGET_WORDS words
    trace: EncoderDecoderTrace
    probabilities: np.ndarray  # (T,) the probability each position gave the token it emitted

    @property
    def text(self) -> str:
        return " ".join(self.words)


def never_special(logits: torch.Tensor) -> torch.Tensor:
    """`logits` (..., target vocabulary) with <pad> and <s> (the vocabulary's first two) at -inf, in
    place: a decoder never writes them, though a random one would."""
    logits[..., :2] = float("-inf")
    return logits


class Translator(nn.Module):
    """An `EncoderDecoder` with what makes it translate: a table of vectors for the Chinese
    characters and one for the English words (times √d_model, plus the sinusoidal positions of
    "Attention Is All You Need"), and a readout from the decoder's output to the English words.
    Random weights from `config.seed`, or trained (`train_translation`)."""

    def __init__(self, config: EncoderDecoderConfig, device: str | torch.device | None = "cpu") -> None:
        super().__init__()
        self.config = config
        self.source_vocabulary = (PAD, *source_vocabulary())
        self.target_vocabulary = (PAD, BOS, EOS, *target_vocabulary())
        self.source_index = {token: i for i, token in enumerate(self.source_vocabulary)}
        self.target_index = {token: i for i, token in enumerate(self.target_vocabulary)}
        self.encoder_decoder = EncoderDecoder(config, device="cpu")
        generator = torch.Generator().manual_seed(config.seed + 2)  # the tables' and readout's own draws
        d_model = config.d_model
        scale = d_model**-0.5  # rows of unit length on average: × √d_model brings them to the positions' size
        self.source_table = nn.Parameter(torch.randn(len(self.source_vocabulary), d_model, generator=generator) * scale)
        self.target_table = nn.Parameter(torch.randn(len(self.target_vocabulary), d_model, generator=generator) * scale)
        self.readout = nn.Linear(d_model, len(self.target_vocabulary))
        with torch.no_grad():
            nn.init.xavier_uniform_(self.readout.weight, generator=generator)
            self.readout.bias.zero_()
        self.requires_grad_(False)
        self.eval()
        self.to(resolve_device(device))

    @property
    def device(self) -> torch.device:
        return self.source_table.device

    def embed(self, table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """ids (..., n) -> (..., n, d_model): the table's rows × √d_model, plus sinusoidal positions."""
        positions = sinusoidal_positions(ids.shape[-1], self.config.d_model).to(table.device)  # (n, d_model)
        return table[ids] * math.sqrt(self.config.d_model) + positions

    def source_tokens(self, text: str) -> list[str]:
        """The sentence's characters, spaces left out; refused when empty, longer than the encoder's
        cap (`LIMITS.max_tokens`: every step of a greedy decoding encodes it again) or outside the
        vocabulary."""
        tokens = check_token_count([character for character in text if not character.isspace()], LIMITS.max_tokens)
        unknown = sorted({token for token in tokens if token not in self.source_index or token == PAD})
        if unknown:
            raise UnknownCharactersError(unknown, self.source_vocabulary[1:])
        return tokens

    @torch.inference_mode()
    def trace(self, source: Sequence[str], target: Sequence[str]) -> EncoderDecoderTrace:
        """The encoder–decoder's trace of source characters and target words (BOS first)."""
        source_ids = torch.tensor([self.source_index[token] for token in source], device=self.device)  # (S,)
        target_ids = torch.tensor([self.target_index[token] for token in target], device=self.device)  # (T,)
        return self.encoder_decoder.trace(self.embed(self.source_table, source_ids),
                                          self.embed(self.target_table, target_ids))  # fmt: skip

    def word_logits(self, output: torch.Tensor) -> torch.Tensor:
        """(..., T, target vocabulary) the readout of the decoder's output (..., T, d_model), with
        <pad> and <s> at -inf (`never_special`)."""
        return never_special(self.readout(output))

    @torch.inference_mode()
    def translate_tokens(self, source: Sequence[str]) -> Translation:
        """Greedy decoding, one word at a time, every step through `trace`: the word each position
        emits is the argmax of `word_logits` there; its probability is their softmax's."""
        target = [BOS]
        while True:
            trace = self.trace(source, target)
            logits = self.word_logits(trace.output)  # (T, target vocabulary)
            word = self.target_vocabulary[int(logits[-1].argmax())]
            if word == EOS:
                words, emitted = target[1:], [*target[1:], EOS]
                break
            if len(target) == MAX_TARGET_WORDS:  # the last word allowed: emitted, not fed back
                words = emitted = [*target[1:], word]
                break
            target.append(word)
        ids = torch.tensor([self.target_index[token] for token in emitted], device=self.device)
        probabilities = logits.softmax(dim=-1)[torch.arange(len(emitted)), ids]  # (T,)
        return Translation(list(source), words, target, emitted, trace, probabilities.cpu().numpy())

    def translate(self, text: str) -> Translation:
        return self.translate_tokens(self.source_tokens(text))


class _Training(nn.Module):
    """What training runs: torch's own `nn.Transformer` (batched, fused) with the translator's tables
    and readout; its weights are copied back into the translator's `EncoderDecoder` afterwards."""

    def __init__(self, translator: Translator) -> None:
        super().__init__()
        self.translator = translator
        self.transformer = translator.encoder_decoder.to_torch()
        self.transformer.encoder.use_nested_tensor = False  # its padding-mask fast path (eval) only warns here

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """source (batch, S) and target (batch, T) ids -> logits (batch, T, target vocabulary)."""
        translator = self.translator
        source_pad = source == 0  # (batch, S)
        causal = nn.Transformer.generate_square_subsequent_mask(target.shape[1], device=target.device)  # (T, T)
        hidden = self.transformer(
            translator.embed(translator.source_table, source), translator.embed(translator.target_table, target),
            tgt_mask=causal, tgt_is_causal=True, src_key_padding_mask=source_pad,
            memory_key_padding_mask=source_pad,
        )  # fmt: skip
        return translator.readout(hidden)

    @torch.no_grad()
    def greedy(self, source: torch.Tensor) -> torch.Tensor:
        """Greedy decoding of a batch (batch, S) -> (batch, MAX_TARGET_WORDS + 1) ids, BOS first."""
        target = torch.full((len(source), 1), 1, device=source.device)  # BOS
        for _ in range(MAX_TARGET_WORDS):
            word = never_special(self(source, target)[:, -1]).argmax(dim=-1)  # (batch,)
            target = torch.cat([target, word[:, None]], dim=1)
        return target


@dataclass(frozen=True)
class TranslationStep:
    step: int
    loss: float  # the training batch's mean cross-entropy per word
    accuracy: float  # the training batch's share of words predicted right (teacher forcing)


@dataclass(frozen=True)
class CrossSnapshot:
    step: int
    weights: np.ndarray  # (decoder layers, heads, T, S): every head's cross-attention on the probe


@dataclass
class TranslationResult:
    model: Translator  # in eval mode, no gradients
    probe: Pair  # a held-out sentence whose cross-attention the snapshots keep
    held_out: list[Pair]  # never trained on
    history: list[TranslationStep] = field(default_factory=list)
    snapshots: list[CrossSnapshot] = field(default_factory=list)
    accuracy: float = 0.0  # exact match of the greedy translation on `held_out`
    alignment: float = 0.0  # see `alignment_scores`: the best head of the last decoder layer
    alignment_heads: np.ndarray | None = None  # (decoder layers, heads) each head's alignment score
    steps_per_second: float = 0.0
    device: str = "cpu"
    stopped: bool = False

    def translate(self, text: str) -> str:
        return self.model.translate(text).text


def alignment_matrix(pair: Pair) -> np.ndarray:
    """(T, S) for each English word (the position that emits it), its source characters, weight 1
    shared among them: what a head that aligns puts its weight on."""
    ideal = np.zeros((len(pair.target), len(pair.source)), dtype=np.float32)
    for row, positions in enumerate(pair.alignment):
        ideal[row, list(positions)] = 1.0 / len(positions)
    return ideal


def aligned_rows(weights: np.ndarray, pair: Pair) -> np.ndarray:
    """weights (..., T, S) with T ≥ the pair's words -> (..., words) whether each word's row puts at
    least half its weight on the word's source characters."""
    on_aligned = (weights[..., : len(pair.target), :] * (alignment_matrix(pair) > 0)).sum(axis=-1)
    return on_aligned >= 0.5


@torch.no_grad()
def alignment_scores(translator: Translator, pairs: Sequence[Pair]) -> np.ndarray:
    """(decoder layers, heads): for each head, the share of the pairs' words whose cross-attention
    row, at the position that emitted the word (the reference fed in, teacher-forced), puts at
    least half its weight on the word's source characters."""
    hits, words = 0, 0
    for pair in pairs:
        trace = translator.trace(list(pair.source), [BOS, *pair.target])
        hits = hits + aligned_rows(cross_weights(trace), pair).sum(axis=-1)  # (layers, heads)
        words += len(pair.target)
    return hits / words


def _padded(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([[*row, *[0] * (width - len(row))] for row in rows])


def train_translation(
    config: EncoderDecoderConfig,
    steps: int,
    *,
    device: str | torch.device | None = None,
    seed: int = 0,
    batch: int = 64,
    learning_rate: float = 2e-3,
    warmup: int = 100,
    held_out: int = 300,
    log_every: int = 25,
    snapshot_every: int = 100,
    callback: Callable[[TranslationStep, CrossSnapshot | None], bool | None] | None = None,
    on_start: Callable[[TranslationResult], None] | None = None,
) -> TranslationResult:
    """Train a `Translator` of shape `config` on the corpus for `steps` steps of Adam (a batch of
    `batch` sentences each; the learning rate rises over `warmup` steps), then measure it on the
    `held_out` sentences it never saw: exact match of its greedy translation, and alignment.

    Deterministic for a seed on the CPU: the weights come from `config.seed`, the split, the
    batches and the probe from `seed`. `callback(logged, snapshot)` runs every `log_every` steps;
    False stops the training there. `on_start` gets the result before the first step; its
    `history` and `snapshots` grow as training goes (a page shows them live).
    """
    if steps < 1:
        raise ValueError(f"steps={steps!r} is invalid: train for at least one step")
    target_device = resolve_device(device)
    generator = torch.Generator().manual_seed(seed)
    pairs = all_pairs()
    order = torch.randperm(len(pairs), generator=generator).tolist()
    probe_index = next(i for i in order if len(pairs[i].target) == 6 and "没" in pairs[i].source)  # the richest kind
    held = [probe_index, *[i for i in order if i != probe_index][: held_out - 1]]
    held_set = set(held)
    train_pairs = [pairs[i] for i in order if i not in held_set]
    translator = Translator(config, device="cpu")
    sources = _padded([[translator.source_index[c] for c in pair.source] for pair in train_pairs])  # (N, S)
    targets = _padded([[1, *[translator.target_index[w] for w in pair.target], 2] for pair in train_pairs])  # (N, T+1)
    sources, targets = sources.to(target_device), targets.to(target_device)
    translator.to(target_device)
    training = _Training(translator).to(target_device)
    parameters = [*training.transformer.parameters(), translator.source_table, translator.target_table,
                  *translator.readout.parameters()]  # fmt: skip
    for parameter in parameters:
        parameter.requires_grad_(True)
    optimizer = torch.optim.Adam(parameters, lr=learning_rate, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    result = TranslationResult(translator, pairs[probe_index], [pairs[i] for i in held], device=target_device.type)

    def snapshot(step: int) -> CrossSnapshot:
        with torch.no_grad():
            translator.encoder_decoder = EncoderDecoder.from_torch(training.transformer).to(target_device)
        return CrossSnapshot(
            step, cross_weights(translator.trace(list(result.probe.source), [BOS, *result.probe.target]))
        )

    result.snapshots.append(snapshot(0))
    if on_start is not None:
        on_start(result)
    training.train()
    start = time.perf_counter()
    step = 0
    for step in range(1, steps + 1):
        rows = torch.randint(len(train_pairs), (batch,), generator=generator).to(target_device)
        source, full = sources[rows], targets[rows]
        width = int((full != 0).sum(dim=1).max())  # the batch's longest target: no column of padding alone
        source = source[:, : int((source != 0).sum(dim=1).max())]
        decoder_input, wanted = full[:, : width - 1], full[:, 1:width]  # (batch, T) each
        logits = training(source, decoder_input)  # (batch, T, vocabulary)
        loss = F.cross_entropy(logits.flatten(0, 1), wanted.flatten(), ignore_index=0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % log_every == 0 or step == steps:
            answered = wanted != 0
            accuracy = (logits.argmax(dim=-1) == wanted)[answered].float().mean()
            logged = TranslationStep(step, float(loss.detach()), float(accuracy))
            result.history.append(logged)
            taken = None
            if step % snapshot_every == 0 or step == steps:
                training.eval()
                taken = snapshot(step)
                training.train()
                result.snapshots.append(taken)
            if callback is not None and callback(logged, taken) is False:
                result.stopped = step < steps
                break
    result.steps_per_second = step / (time.perf_counter() - start)
    training.eval()
    for parameter in parameters:
        parameter.requires_grad_(False)
    translator.encoder_decoder = EncoderDecoder.from_torch(training.transformer).to(target_device)
    result.accuracy = held_out_accuracy(training, result.held_out)
    result.alignment_heads = alignment_scores(translator, result.held_out)
    result.alignment = float(result.alignment_heads[-1].max())
    return result


def held_out_accuracy(training: _Training, pairs: Sequence[Pair]) -> float:
    """The share of `pairs` whose greedy translation is exactly the reference (EOS where it ends)."""
    translator = training.translator
    source = _padded([[translator.source_index[c] for c in pair.source] for pair in pairs]).to(translator.device)
    decoded = training.greedy(source).cpu().tolist()  # (N, MAX_TARGET_WORDS + 1)
    right = 0
    for pair, row in zip(pairs, decoded, strict=True):
        words = [translator.target_vocabulary[i] for i in row[1:]]
        right += words[: len(pair.target) + 1] == [*pair.target, EOS]
    return right / len(pairs)


# ---------------------------------------------------------------------------------------------
# A translation's attention, as the step view takes a trace.

# The attention an interface shows: the encoder's self-attention over the source, the decoder's
# masked self-attention over its own input, and cross-attention (target queries over the source).
ATTENTION_KINDS: tuple[str, ...] = ("encoder", "decoder", "cross")
STEP_NAMES: tuple[str, ...] = ("q", "k", "v", "scores", "scaled_scores", "weights", "context")


def attention_arrays(translator: Translator, translation: Translation, kind: str) -> TraceArrays:
    """One attention of `translation` as a `TraceArrays`, under the names an encoder's trace uses
    (`layer0.q`, ..., `mask`), so the step view shows it: the encoder's self-attention over the
    source; the decoder's masked self-attention over its input (<s> first), with the causal `mask`
    (True: the query may see the key) and a config that says `causal`; or cross-attention, whose
    queries are the decoder's positions and whose `key_tokens` are the source's characters."""
    config = translator.config
    trace = translation.trace
    if kind == "encoder":
        arrays, tokens, layer_config = trace.encoder.to_numpy(), translation.source, config.encoder_config()
        arrays["tokens"] = np.array(tokens, dtype=str)
    elif kind in ("decoder", "cross"):
        tokens = translation.target
        causal = kind == "decoder"
        layer_config = dataclasses.replace(config.encoder_config(), n_layers=config.n_decoder_layers, causal=causal)
        arrays = {"tokens": np.array(tokens, dtype=str)}
        if causal:
            arrays["mask"] = np.tril(np.ones((len(tokens), len(tokens)), dtype=bool))  # (T, T)
        for i, layer in enumerate(trace.decoder):
            attention = layer.self_attention if causal else layer.cross_attention
            for name in STEP_NAMES:
                arrays[f"layer{i}.{name}"] = getattr(attention, name).cpu().numpy()
    else:
        raise ValueError(f"kind={kind!r} is invalid: must be one of {', '.join(ATTENTION_KINDS)}")
    return TraceArrays.frozen(
        config=layer_config,
        model_name=None,
        tokens=list(tokens),
        unknown=[False] * len(tokens),
        arrays=arrays,
        device=translator.device.type.upper(),
        milliseconds=0.0,
        parameters=sum(p.numel() for p in translator.parameters()),
        key_tokens=list(translation.source) if kind == "cross" else None,
    )


def cross_weights(trace: EncoderDecoderTrace) -> np.ndarray:
    """(decoder layers, heads, T, S) every head's cross-attention: row t is the position that
    emitted word t, over the source characters."""
    return torch.stack([layer.cross_attention.weights for layer in trace.decoder]).cpu().numpy()
