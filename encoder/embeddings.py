"""The text front end: text in, the input of layer 0 out (`TextEmbedding`), with the token
embeddings and positional encodings of random-weight mode (`HashedTextEmbedding`).

The front end is the one part that differs between random weights, a trained checkpoint
(`encoder.pretrained`) and a model trained here (`encoder.training`), so it is a swappable
module rather than a branch in the encoder.

A token's vector is derived from a cryptographic hash of (seed, d_model, token), not
from a lookup table or Python's salted `hash()`: the same word gets the same vector in
every run, process and machine, any word of any script has one, and a word that appears
twice shares its embedding, so only the positional encoding tells the two apart.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from encoder.config import EncoderConfig
from encoder.tokenizer import tokenize

_UNIT_VARIANCE_BOUND = math.sqrt(3.0)  # U(-√3, √3) has mean 0 and variance 1


def token_embedding(token: str, seed: int, d_model: int) -> np.ndarray:
    """The (d_model,) float32 embedding of one token.

    Uniform in (-√3, √3), so each component has variance 1 like a normal initialisation.
    Only exact IEEE arithmetic on hash bytes is involved (no log or cos whose last bit
    depends on the CPU's math library), which is what makes the numbers identical on
    every machine.
    """
    key = f"{seed}\x1f{d_model}\x1f{token}".encode()
    digest = hashlib.shake_256(key).digest(4 * d_model)
    ints = np.frombuffer(digest, dtype="<u4").astype(np.float64)  # (d_model,)
    uniform = (ints + 0.5) / 2.0**32  # (d_model,) in (0, 1)
    return ((2.0 * uniform - 1.0) * _UNIT_VARIANCE_BOUND).astype(np.float32)


def token_embeddings(tokens: list[str], seed: int, d_model: int) -> torch.Tensor:
    """The (n, d_model) embeddings of a token sequence."""
    return torch.from_numpy(np.stack([token_embedding(t, seed, d_model) for t in tokens]))


def sinusoidal_positions(n_tokens: int, d_model: int) -> torch.Tensor:
    """The (n, d_model) fixed encoding of "Attention Is All You Need", section 3.5.

    PE[pos, 2i] = sin(pos / 10000^(2i/d_model)), PE[pos, 2i+1] = cos(same angle).
    Computed in float64 and rounded once, so the float32 values are as exact as they can be.
    """
    position = torch.arange(n_tokens, dtype=torch.float64)[:, None]  # (n, 1)
    even_dims = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(d/2),)
    angle = position / 10000.0 ** (even_dims / d_model)  # (n, ceil(d/2))
    encoding = torch.zeros(n_tokens, d_model, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(angle)
    encoding[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return encoding.float()


class TextEmbedding(nn.Module, ABC):
    """Text in, the input of layer 0 out, in the steps a trace shows.

    Tokens, one embedding per token, the positions added to them, and what enters layer 0
    are kept apart so that the app can draw each. Parameters belong to the encoder like
    any other: `Encoder` fills them from its weights or its seed.
    """

    @abstractmethod
    def tokenize(self, text: str, max_tokens: int | None) -> list[str]:
        """The tokens of `text`; raise `EmptyTextError` or `TooManyTokensError` (None: no cap)."""

    @abstractmethod
    def embed(self, tokens: Sequence[str]) -> torch.Tensor:
        """(n, d_model) one vector per token, on any device (the encoder moves it)."""

    @abstractmethod
    def positional_encoding(self, n_tokens: int) -> torch.Tensor:
        """(n, d_model) what is added to the embeddings of a sequence of n tokens."""

    @property
    @abstractmethod
    def learned_positions(self) -> torch.Tensor | None:
        """(max positions, d_model) the trained position table, or None when positions are not learned."""

    def layer_input(self, embeddings: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(n, d_model) what enters layer 0: the plain sum, as in "Attention Is All You Need"."""
        return embeddings + positions

    def unknown(self, tokens: Sequence[str]) -> list[bool]:
        """Per token, whether the vocabulary had no entry for it: never, when any token can be embedded."""
        return [False] * len(tokens)


class PositionalTextEmbedding(TextEmbedding, ABC):
    """A front end whose positions are the config's `positional`: a learned table (a parameter
    the encoder fills like any other), the sinusoids of "Attention Is All You Need", or none.

    Random weights and a trained model's digit vocabulary both take positions from the config:
    one home, so the two cannot drift apart.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.d_model = config.d_model
        self.positional = config.positional
        self.position_table = (
            nn.Parameter(torch.empty(config.limits.max_tokens, config.d_model))
            if config.positional == "learned"
            else None
        )

    def positions(self, n_tokens: int, device: str | torch.device = "cpu") -> torch.Tensor:
        """(n, d_model), with gradients when the table is learned (training adds them to a batch);
        a learned table's rows stay where the table lives, the others are made on `device`."""
        if self.positional == "learned":
            return self.position_table[:n_tokens]  # (n, d_model)
        if self.positional == "sinusoidal":
            return sinusoidal_positions(n_tokens, self.d_model).to(device)  # (n, d_model)
        return torch.zeros(n_tokens, self.d_model, device=device)

    def positional_encoding(self, n_tokens: int) -> torch.Tensor:
        return self.positions(n_tokens).detach()  # (n, d_model)

    @property
    def learned_positions(self) -> torch.Tensor | None:
        return self.position_table


class HashedTextEmbedding(PositionalTextEmbedding):
    """Random-weight mode: the teaching tokenizer, hashed embeddings and a chosen positional encoding.

    Hashing embeds every token of every script, so nothing is ever unknown (see
    `encoder.embeddings` for why hashing rather than a table).
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__(config)
        self.seed = config.seed

    def tokenize(self, text: str, max_tokens: int | None) -> list[str]:
        return tokenize(text, max_tokens=max_tokens)

    def embed(self, tokens: Sequence[str]) -> torch.Tensor:
        return token_embeddings(list(tokens), self.seed, self.d_model)  # (n, d_model)
