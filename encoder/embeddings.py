"""Token embeddings and positional encodings for random-weight mode.

A token's vector is derived from a cryptographic hash of (seed, d_model, token), not
from a lookup table or Python's salted `hash()`: the same word gets the same vector in
every run, process and machine, any word of any script has one, and a word that appears
twice shares its embedding, so only the positional encoding tells the two apart.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

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
