"""The translation model (encoder/translation.py): it learns the corpus, its greedy decoding
through our trace is torch's greedy decoding on the same weights, the last step's trace holds
every earlier step's rows, and a sentence it cannot read is refused with its vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from encoder import EmptyTextError, TooManyTokensError
from encoder.encoder_decoder import EncoderDecoderConfig
from encoder.translation import (
    BOS,
    EOS,
    MAX_TARGET_WORDS,
    Translator,
    UnknownCharactersError,
    aligned_rows,
    all_pairs,
    source_vocabulary,
    train_translation,
)

TINY = EncoderDecoderConfig(d_model=32, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, seed=0)


@pytest.fixture(scope="module")
def trained():
    """A small model trained briefly: enough to translate most of the corpus."""
    return train_translation(TINY, 200, device="cpu", held_out=100, log_every=10, snapshot_every=100)


def test_training_lowers_the_loss_and_keeps_the_probes_cross_attention(trained):
    history = trained.history
    assert [h.step for h in history] == list(range(10, 201, 10)) and not trained.stopped
    assert history[-1].loss < history[0].loss / 4
    assert [s.step for s in trained.snapshots] == [0, 100, 200]
    probe = trained.probe
    assert probe in trained.held_out and probe.text not in {pair.text for pair in all_pairs()} - {
        pair.text for pair in trained.held_out
    }
    layers, heads = TINY.n_decoder_layers, TINY.n_heads
    for snapshot in trained.snapshots:  # (layers, heads, T, S) rows of a softmax
        assert snapshot.weights.shape == (layers, heads, len(probe.target) + 1, len(probe.source))
        np.testing.assert_allclose(snapshot.weights.sum(axis=-1), 1.0, atol=1e-5)
    assert 0.0 <= trained.accuracy <= 1.0 and trained.alignment_heads.shape == (layers, heads)
    assert trained.alignment == trained.alignment_heads[-1].max()


def test_stopping_from_the_callback_ends_the_training_there():
    result = train_translation(TINY, 100, device="cpu", held_out=10, log_every=5, callback=lambda *_: False)
    assert [h.step for h in result.history] == [5] and result.stopped


def _torch_greedy(translator: Translator, source: list[str]) -> list[str]:
    """Greedy decoding with torch's nn.Transformer on the translator's weights, its own causal mask."""
    module = translator.encoder_decoder.to_torch()
    source_ids = torch.tensor([[translator.source_index[c] for c in source]])
    memory_input = translator.embed(translator.source_table, source_ids)  # (1, S, d_model)
    target = [translator.target_index[BOS]]
    with torch.no_grad():
        for _ in range(MAX_TARGET_WORDS):  # at most that many words, as the translator
            ids = torch.tensor([target])
            mask = nn.Transformer.generate_square_subsequent_mask(len(target))
            hidden = module(memory_input, translator.embed(translator.target_table, ids), tgt_mask=mask)
            logits = translator.readout(hidden)[0, -1]  # (vocabulary,)
            logits[:2] = float("-inf")  # never <pad> or <s>
            word = int(logits.argmax())
            if word == translator.target_index[EOS]:
                break
            target.append(word)
    return [translator.target_vocabulary[i] for i in target[1:]]


@pytest.mark.parametrize("which", ["trained", "random"])
def test_greedy_decoding_through_the_trace_is_torchs(trained, which):
    translator = trained.model if which == "trained" else Translator(TINY)
    for text in ("我爱你", "他昨天没看见我们", "今天她不喜欢他们"):
        translation = translator.translate(text)
        assert translation.words == _torch_greedy(translator, list(text)), text
        assert translation.target == [BOS, *translation.emitted[:-1]] and len(translation.words) <= MAX_TARGET_WORDS
        ended = translation.emitted[-1] == EOS
        assert translation.emitted == ([*translation.words, EOS] if ended else translation.words), text
        assert ((translation.probabilities > 0) & (translation.probabilities <= 1)).all()


def test_the_last_steps_trace_holds_every_earlier_steps_rows(trained):
    """What the generation scrubber relies on: row t of the final trace is what step t computed."""
    translator = trained.model
    translation = translator.translate("他昨天没看见我们")
    for t in range(1, len(translation.target) + 1):
        prefix = translator.trace(translation.source, translation.target[:t])
        for ours, full in zip(prefix.decoder, translation.trace.decoder, strict=True):
            for kind in ("self_attention", "cross_attention"):
                np.testing.assert_allclose(
                    getattr(ours, kind).weights.numpy(),
                    getattr(full, kind).weights[:, :t, : getattr(ours, kind).weights.shape[2]].numpy(),
                    atol=1e-6,
                )


def test_a_sentence_outside_the_vocabulary_is_refused_with_the_vocabulary():
    translator = Translator(TINY)
    with pytest.raises(UnknownCharactersError) as refused:
        translator.translate("我爱猫 cat")
    assert refused.value.details["characters"] == "act猫"
    assert refused.value.details["vocabulary"].split() == list(source_vocabulary())
    with pytest.raises(EmptyTextError):
        translator.translate("  ")
    with pytest.raises(TooManyTokensError):  # each step would encode it again
        translator.translate("我爱你" * 100)
    assert translator.translate("我 爱 你").source == ["我", "爱", "你"]  # spaces are not tokens


def test_a_row_is_aligned_when_half_its_weight_is_on_the_words_characters():
    pair = next(pair for pair in all_pairs() if pair.source == "昨天我们爱他")  # we loved him yesterday
    weights = np.zeros((len(pair.target) + 1, len(pair.source)))  # (T, S), EOS's row last
    weights[0, 2:4] = 0.25  # "we" on 我们, half its weight
    weights[0, 0] = 0.5
    weights[1, 4] = 0.49  # "loved" on 爱: less than half
    weights[1, 5] = 0.51
    weights[2, 5] = 1.0  # "him" on 他
    weights[3, 0:2] = [0.3, 0.3]  # "yesterday" on 昨天
    assert aligned_rows(weights, pair).tolist() == [True, False, True, True]
