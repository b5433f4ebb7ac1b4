"""Train a model (ui.trainer) through AppTest: training runs off the script thread, the page shows
its progress, curves and heads, a scrubber replays the stored snapshots, and the trained model
opens in the step view; in both languages, with a cap on trainings at once."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from encoder.training import TASKS
from tests.app import page
from ui import trainings
from ui.i18n import texts
from ui.trainings import MAX_TRAININGS, TrainingKey

STEPS = 300  # the smallest choice: enough for snapshots at 0, 100, 200, 300


def _wait(key: TrainingKey, timeout: float = 120.0) -> trainings.Job:
    job = trainings.trainings().get(key)
    assert job is not None, "pressing Train started nothing"
    assert job.done.wait(timeout), f"the training did not end within {timeout:.0f} s"
    return job


def _trained(lang: str, task: str = "reverse", seed: int = 11):
    at = page.run(trainer="1", train_steps=str(STEPS), train_task=task, train_seed=str(seed), lang=lang)
    t = texts(lang)
    assert at.toggle(key="trainer").value
    at = page.after(at.button(key="train_start").click())
    key = TrainingKey(task, 32, 2, 2, STEPS, seed)
    job = _wait(key)
    assert job.error is None, job.error
    at = page.after(at)  # the page looks again once it has finished
    return at, t, key, job


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_training_shows_its_curves_heads_and_ideal_and_opens_in_the_step_view(lang):
    at, t, key, job = _trained(lang)
    result = job.result
    assert [snapshot.step for snapshot in result.snapshots] == [0, 100, 200, STEPS]
    done = [s.value for s in at.success]
    assert done and done[0].startswith(t["train_done"].split("{")[0])
    curves = page.chart(at, "training_curves")
    assert [trace["name"] for trace in curves["data"]] == [t["chart_loss"], t["chart_accuracy"]]
    assert page.decode(curves["data"][0]["x"]).tolist() == [logged.step for logged in result.history]
    assert page.decode(curves["data"][1]["y"]).tolist() == [logged.accuracy for logged in result.history]
    heads = page.chart(at, f"training_heads_{STEPS}")
    assert page.ticks(heads, "xaxis") == [f"{t['head']} 1", f"{t['head']} 2"]
    ideal = page.chart(at, "training_ideal")
    expected = TASKS["reverse"].ideal(torch.tensor([[int(d) for d in result.probe]]))[0].numpy()  # the anti-diagonal
    np.testing.assert_array_equal(page.decode(ideal["data"][0]["z"]), expected)

    # The scrubber holds exactly the stored snapshots; step 0 shows the untrained heads.
    scrubber = at.select_slider(key=f"train_scrub_{key.file_name}")
    assert list(scrubber.options) == ["0", "100", "200", str(STEPS)]
    at = page.after(scrubber.set_value(0))
    page.chart(at, "training_heads_0")
    title = t["train_heads_title"].format(probe=" ".join(result.probe), step=0)
    assert f"**{title}**" in [markdown.value for markdown in at.markdown]

    # Inspect this model: the step view shows the trained model on its probe.
    at = page.after(at.button(key="train_inspect").click())
    at = page.after(at)
    assert at.radio(key="model").value == "trained"
    header, arrays = page.step_view(at)
    assert header["tokens"] == result.probe and header["d_model"] == 32 and header["n_layers"] == 2
    final = result.model.trace_tokens(result.probe)
    np.testing.assert_array_equal(arrays["layer1.weights"], final.layers[1].weights.numpy())


def test_a_link_to_a_model_not_trained_here_says_what_to_do():
    at = page.run(model="trained", train_seed="4242", trainer="1")
    assert texts("en")["trained_needed"] in page.alerts(at)
    assert not page.has_step_view(at)


def test_no_more_than_the_cap_train_at_once():
    registry = trainings.Trainings()
    keys = [TrainingKey("previous", 16, 1, 1, 5000, seed) for seed in range(MAX_TRAININGS + 1)]
    jobs = [registry.start(key) for key in keys[:MAX_TRAININGS]]
    try:
        assert all(job is not None and job.running for job in jobs)
        assert registry.start(keys[-1]) is None  # the cap: refused while the others run
        assert registry.start(keys[0]) is jobs[0]  # the same settings find the running training
    finally:
        for job in jobs:
            job.stop.set()
        for job in jobs:
            assert job.done.wait(60)
    assert all(job.result.stopped for job in jobs)
    assert registry.start(keys[-1]) is not None  # room again
    registry.get(keys[-1]).stop.set()


def test_training_runs_off_the_script_thread_and_its_result_grows_live():
    key = TrainingKey("previous", 16, 1, 1, 1000, 77)
    job = trainings.Trainings().start(key)  # returns at once: the training is a thread of its own
    assert job is not None and job.running
    assert any(key.file_name in thread.name for thread in threading.enumerate())
    deadline = time.perf_counter() + 60
    while (job.result is None or len(job.result.history) < 2) and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert job.running and len(job.result.history) >= 2  # visible to the page while it trains
    job.stop.set()
    assert job.done.wait(60) and job.error is None and job.result.stopped


@pytest.mark.parametrize("experiment", ["head_view", "scaling", "padding", "shuffle", "compare"])
def test_every_view_runs_on_a_trained_model(experiment):
    """The trained model is a model like any other: the rest of the layer and every experiment run on it."""
    _trained("en", task="previous", seed=12)
    at = page.run(
        model="trained", train_task="previous", train_seed="12", train_steps=str(STEPS), text="3 1 4 1 5 9 2 6"
    )
    assert page.step_view(at)[0]["tokens"] == list("31415926")
    at = page.after(at.toggle(key="rest").set_value(True))
    at = page.after(at.radio(key="experiment").set_value(experiment))
    assert not at.exception
    assert page.charts(at), "no chart drawn"
