"""Scaled dot-product attention, one line per step of softmax(Q·Kᵀ/√d_k)·V.

`nn.MultiheadAttention` fuses these steps and hands back at most the weights; here each
intermediate is a named tensor, so the app can show every one and the tests can check
each against the formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AttentionSteps:
    """Every intermediate of attention for all heads of one sequence."""

    scores: torch.Tensor  # (heads, n, n)  Q·Kᵀ
    scaled_scores: torch.Tensor  # (heads, n, n)  Q·Kᵀ / √d_k, -inf where masked
    weights: torch.Tensor  # (heads, n, n)  softmax over keys; each row sums to 1
    context: torch.Tensor  # (heads, n, d_head)  weights · V


def scaled_dot_product_attention(
    q: torch.Tensor,  # (heads, n, d_head)
    k: torch.Tensor,  # (heads, n, d_head)
    v: torch.Tensor,  # (heads, n, d_head)
    allowed: torch.Tensor | None = None,  # (n, n) bool: query i may attend to key j
    *,
    scale: bool = True,
    temperature: float = 1.0,
) -> AttentionSteps:
    """Attention of every query over every allowed key, keeping each step.

    `scale=False` skips the division by √d_k and `temperature` divides once more, both to
    show what the paper's scaling prevents: with large d_k the raw scores grow and the
    softmax saturates.
    """
    d_head = q.shape[-1]
    scores = q @ k.transpose(-2, -1)  # (heads, n, n)
    divisor = (math.sqrt(d_head) if scale else 1.0) * temperature
    scaled_scores = scores / divisor if divisor != 1.0 else scores  # (heads, n, n)
    if allowed is not None:
        scaled_scores = scaled_scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scaled_scores, dim=-1)  # (heads, n, n)
    context = weights @ v  # (heads, n, d_head)
    return AttentionSteps(scores, scaled_scores, weights, context)


def attention_mask(
    n_tokens: int,
    *,
    causal: bool = False,
    key_padding_mask: torch.Tensor | None = None,  # (n,) bool, True = padding
    device: torch.device | None = None,
) -> torch.Tensor | None:
    """Which keys each query may see, as an (n, n) bool tensor; None when all of them.

    Padding follows torch's `src_key_padding_mask` convention (True marks a padded key).
    A query that could see no key at all would get a softmax over nothing (NaN), so
    that is refused here with a clear error.
    """
    if not causal and key_padding_mask is None:
        return None
    allowed = torch.ones(n_tokens, n_tokens, dtype=torch.bool, device=device)
    if causal:
        allowed = torch.tril(allowed)
    if key_padding_mask is not None:
        padding = torch.as_tensor(key_padding_mask, dtype=torch.bool, device=device)
        if padding.shape != (n_tokens,):
            raise ValueError(f"key_padding_mask has shape {tuple(padding.shape)}; expected ({n_tokens},)")
        allowed = allowed & ~padding  # (n, n): broadcast over queries
    if not bool(allowed.any(dim=-1).all()):
        raise ValueError("the mask leaves some query with no key to attend to")
    return allowed
