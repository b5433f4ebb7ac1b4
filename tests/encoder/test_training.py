"""Training a small encoder (encoder.training): it learns the task and the task's attention
pattern, its trace is torch.nn's forward on the same weights, and the probe's snapshots replay
how the heads formed."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from encoder import EncoderConfig, from_torch, load_torch_file, to_torch
from encoder.training import IGNORE, SEQUENCE_LENGTH, TASKS, fused_forward, train

SMALL = EncoderConfig(d_model=32, n_heads=2, n_layers=2, seed=0)


@pytest.fixture(scope="module")
def previous():
    """The issue's run: `previous`, d_model 32, 2 heads, 2 layers, 3,000 steps on the CPU."""
    return train("previous", SMALL, 3000, device="cpu")


def test_previous_is_learned_with_a_head_on_the_previous_token(previous):
    history = previous.history
    assert history[-1].step == 3000 and not previous.stopped
    assert history[-1].loss < history[0].loss / 100  # from ~ln 10 to near 0
    accuracy, heads = previous.evaluate(sequences=1024, seed=2024)  # fresh sequences, never trained on
    assert accuracy >= 0.95
    assert heads.shape == (2, 2) and heads.max() >= 0.5  # mean weight on the ideal key, random probes
    # The best head's attention on the probe is the sub-diagonal: each query's largest weight is i - 1.
    layer, head = np.unravel_index(heads.argmax(), heads.shape)
    last = previous.snapshots[-1].weights[layer, head]  # (n, n)
    assert (last[1:].argmax(axis=-1) == np.arange(SEQUENCE_LENGTH - 1)).all()


def test_the_trained_models_trace_is_torch_nns_forward_on_the_same_weights(previous):
    model = previous.model
    reference = to_torch(model)  # torch's own module, holding the trained weights
    assert isinstance(reference, nn.TransformerEncoder)
    tokens = list("31415926")
    trace = model.trace_tokens(tokens)
    with torch.no_grad():
        expected = reference(trace.input[None])[0]  # (n, d_model)
        fused, _ = fused_forward(model, model.text_embedding.ids(tokens)[None])
    torch.testing.assert_close(trace.output, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fused[0], trace.output, atol=1e-5, rtol=1e-5)
    # Saved as torch saves it, the upload reads it back: the same layers, the same numbers.
    buffer = io.BytesIO()
    torch.save(reference, buffer)
    again = from_torch(load_torch_file(buffer.getvalue()), device="cpu")
    torch.testing.assert_close(again.trace(trace.input).output, trace.output, atol=1e-6, rtol=1e-6)


def test_snapshots_replay_the_probe_at_the_steps_they_were_taken(previous):
    steps = [snapshot.step for snapshot in previous.snapshots]
    assert steps == list(range(0, 3001, 100))
    first, last = previous.snapshots[0].weights, previous.snapshots[-1].weights
    assert first.shape == last.shape == (2, 2, SEQUENCE_LENGTH, SEQUENCE_LENGTH)
    np.testing.assert_allclose(last.sum(axis=-1), 1.0, atol=1e-5)  # softmax rows
    final = previous.model.trace_tokens(previous.probe)
    np.testing.assert_allclose(last, torch.stack([layer.weights for layer in final.layers]).numpy(), atol=1e-6)
    assert np.abs(last - first).max() > 0.5  # the heads changed while it learned


def test_training_is_deterministic_for_a_seed_and_a_callback_stops_it():
    def weights(result):
        return torch.cat([p.flatten() for p in result.model.parameters()])

    a, b = train("reverse", SMALL, 30, device="cpu", seed=3), train("reverse", SMALL, 30, device="cpu", seed=3)
    torch.testing.assert_close(weights(a), weights(b), atol=0, rtol=0)
    assert not torch.equal(weights(a), weights(train("reverse", SMALL, 30, device="cpu", seed=4)))
    stopped = train("reverse", SMALL, 200, device="cpu", callback=lambda logged, _: logged.step < 50)
    assert stopped.stopped and stopped.history[-1].step == 50


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_tasks_ideal_pattern_answers_its_targets(name):
    """Attending exactly as the ideal pattern says, and copying the attended token, gives every
    target: the pattern solves the task (checked on one-hot tokens, no model involved)."""
    task = TASKS[name]
    inputs, targets = task.sample(torch.Generator().manual_seed(0), 256, SEQUENCE_LENGTH)
    ideal = task.ideal(inputs)  # (batch, n, n)
    one_hot = nn.functional.one_hot(inputs, len(task.vocabulary)).float()  # (batch, n, vocab)
    copied = (ideal @ one_hot).argmax(dim=-1)  # (batch, n)
    answered = targets != IGNORE
    assert answered.any()
    assert torch.equal(copied[answered], targets[answered])
    assert torch.equal(ideal.sum(dim=-1) > 0, answered)  # a row for every answered query, none else


def test_the_hand_worked_examples_of_sort_and_induction():
    sort, induction = TASKS["sort"], TASKS["induction"]
    inputs = torch.tensor([[3, 1, 2, 1]])
    np.testing.assert_allclose(sort.ideal(inputs)[0, 0].numpy(), [0, 0.5, 0, 0.5])  # the smallest: both 1s
    np.testing.assert_allclose(sort.ideal(inputs)[0, 3].numpy(), [1, 0, 0, 0])  # the largest: the 3
    tokens = torch.tensor([[1, 2, 3, 1, 2]])
    assert induction.targets(tokens).tolist() == [[IGNORE, IGNORE, IGNORE, 2, 3]]  # 1 was followed by 2; 2 by 3
    assert induction.ideal(tokens)[0, 3].argmax() == 1 and induction.ideal(tokens)[0, 4].argmax() == 2
    assert induction.min_layers == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_the_gpu_learns_the_same():
    result = train("previous", SMALL, 3000, device="cuda")
    assert result.device == "cuda" and result.model.device.type == "cuda"
    accuracy, heads = result.evaluate()
    assert accuracy >= 0.95 and heads.max() >= 0.5
