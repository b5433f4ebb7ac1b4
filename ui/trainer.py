"""Train a model: a small encoder trained live on a task whose right answer is a pattern of
attention (encoder.training), its heads on a fixed probe redrawn as it learns, a scrubber over
the stored snapshots afterwards, and the trained model opened in every other view.

Training runs in a thread of its own (ui.trainings, server-wide), never on the page's script
thread: the page only looks at the training's live result every `REFRESH_S` (a fragment's
`run_every`).
"""

from __future__ import annotations

import streamlit as st

from encoder.training import TASKS, Snapshot, TrainingResult, probe_ideal, probe_scores
from encoder.translation import CrossSnapshot, TranslationResult, aligned_rows, alignment_matrix
from ui import session, widgets
from ui.i18n import option_label
from ui.settings import CHOICES, MAX_SEED, MAX_TRAIN_LAYERS, TRAIN_D_MODELS, TRAIN_HEADS, TRAIN_STEPS
from ui.trainings import MAX_TRAININGS, Job, TrainingKey, trainings
from viz import heads_grid_figure, markdown_literal, matrix_figure, training_curves_figure

REFRESH_S = 1.0  # how often a page with a running training redraws it


def start(key: TrainingKey) -> None:
    job = trainings().start(key)
    if job is None:
        st.session_state.training_refused = True
    else:
        st.session_state.training = key


def inspect(key: TrainingKey) -> None:
    """Open the trained model in every view of the page, on its probe."""
    job = trainings().get(key)
    if job is not None and job.finished:
        if key.task == "translate":
            st.session_state.model, st.session_state.translation_weights = "translation", "trained"
            st.session_state.text = job.result.probe.source
        else:
            st.session_state.model = "trained"
            st.session_state.text = " ".join(job.result.probe)
        st.session_state.training_inspect = True  # the button is in a fragment: the whole page must run


def section() -> None:
    """The section: its settings, Train and Stop, and the training's live view."""
    t = session.strings()
    with st.container(key="trainer-section", border=True):
        st.toggle(t["train_toggle"], key="trainer", persist_state="session")
        if not st.session_state.trainer:
            session.sync_link(session.settings())
            return
        st.markdown(t["train_text"])
        controls(t)
        settings = session.settings()
        session.sync_link(settings)
        key = TrainingKey.of(settings)
        task = TASKS.get(key.task)  # None: "translate", which trains a translator (encoder.translation)
        if task is not None and key.n_layers < task.min_layers:
            st.info(t["train_layers_needed"].format(n=task.min_layers))
        mine = st.session_state.get("training")
        own = trainings().get(mine) if mine is not None else None
        job = own if own is not None and own.running else trainings().get(key)
        busy = own is not None and own.running
        left, right = st.columns(2)
        left.button(t["train_start"], on_click=start, args=(key,), disabled=busy, type="primary", key="train_start")
        if job is not None and job.running:
            right.button(t["train_stop"], on_click=job.stop.set, key="train_stop")
        if st.session_state.pop("training_refused", False):
            st.warning(t["train_busy"].format(n=MAX_TRAININGS))
        if job is not None:
            st.session_state.training_timer = job.running  # the live view redraws itself while it trains
            st.fragment(live, run_every=REFRESH_S if job.running else None)(job)


def controls(t: dict[str, str]) -> None:
    keep = {"persist_state": "session"}
    st.radio(
        t["train_task"], CHOICES["train_task"], key="train_task", format_func=option_label(t, "train_task"), **keep
    )
    first, second, third = st.columns(3)
    first.select_slider(t["d_model"], TRAIN_D_MODELS, key="train_d_model", **keep)
    divisors = [h for h in TRAIN_HEADS if st.session_state.train_d_model % h == 0]
    if st.session_state.train_n_heads not in divisors:
        st.session_state.train_n_heads = divisors[-1]
    second.select_slider(t["heads"], divisors, key="train_n_heads", **keep)
    third.slider(t["layers"], 1, MAX_TRAIN_LAYERS, key="train_n_layers", **keep)
    left, right = st.columns(2)
    left.select_slider(t["train_steps"], TRAIN_STEPS, key="train_steps", **keep)
    right.number_input(t["seed"], 0, MAX_SEED, step=1, key="train_seed", **keep)


def live(job: Job) -> None:
    """Progress, curves, and every head on the probe beside the ideal pattern; afterwards a
    scrubber over the snapshots, "Inspect this model" and the download."""
    t = session.strings()
    result = job.result
    if result is None:  # the thread has not built the model yet
        st.progress(0.0)
        return
    if st.session_state.pop("training_inspect", False):
        st.rerun(scope="app")
    if job.done.is_set() and st.session_state.get("training_timer"):
        st.rerun(scope="app")  # it finished since the last look: the page once more, without the timer
    history, snapshots = list(result.history), list(result.snapshots)  # copies: the thread appends
    step = history[-1].step if history else 0
    device = result.device.upper()
    if job.running:
        st.progress(step / job.key.steps)
        st.caption(t["train_running"].format(device=device, step=step, steps=job.key.steps, rate=job.rate))
    elif job.error is not None:
        st.error(t["train_failed"].format(error=job.error))
        return
    else:
        if result.stopped:
            st.info(t["train_stopped"].format(step=step, steps=job.key.steps))
        score = float(job.head_scores.max()) if job.head_scores is not None else 0.0
        done = {"step": step, "device": device, "rate": job.rate, "accuracy": job.accuracy, "score": score}
        if isinstance(result, TranslationResult):
            score = float(job.head_scores[-1].max())  # the best head of the last decoder layer
            done |= {"score": score, "n": len(result.held_out)}
            st.success(t["train_translate_done"].format(**done))
        else:
            st.success(t["train_done"].format(**done))
    look = {"labels": session.labels(), "style": session.chart_style(session.settings())}
    if history:
        fig = training_curves_figure(
            [h.step for h in history], [h.loss for h in history], [h.accuracy for h in history],
            title=t["train_curves"], **look,
        )  # fmt: skip
        widgets.chart(fig, "training_curves")
    shown = snapshots[-1]
    if not job.running and len(snapshots) > 1:
        steps = [snapshot.step for snapshot in snapshots]
        chosen = st.select_slider(t["train_scrub"], steps, value=steps[-1], key=f"train_scrub_{job.key.file_name}")
        shown = snapshots[steps.index(chosen)]
    if isinstance(result, TranslationResult):
        translation_snapshot(result, shown, look, t)
    else:
        encoder_snapshot(result, shown, look, t)
    if job.finished:
        left, right = st.columns(2)
        left.button(t["train_inspect"], on_click=inspect, args=(job.key,), key="train_inspect")
        if job.key.task != "translate":  # the upload reads an encoder back; a translator is not one
            right.download_button(
                t["train_download"], data=job.saved(), file_name=job.key.file_name, mime="application/octet-stream"
            )


def encoder_snapshot(result: TrainingResult, shown: Snapshot, look: dict, t: dict[str, str]) -> None:
    """Every head on the probe at a snapshot, beside the task's ideal pattern and each head's match."""
    probe = result.probe
    st.markdown(f"**{t['train_heads_title'].format(probe=' '.join(probe), step=shown.step)}**")
    widgets.chart(heads_grid_figure(shown.weights, probe, **look), f"training_heads_{shown.step}")
    left, right = st.columns(2)
    with left:
        fig = matrix_figure(probe_ideal(result), probe, probe, kind="weights", title=t["train_ideal"], **look)
        widgets.chart(fig, "training_ideal")
    with right:
        st.caption(t["train_match"])
        widgets.per_head_table({t["train_match"]: probe_scores(result, shown)})


def translation_snapshot(result: TranslationResult, shown: CrossSnapshot, look: dict, t: dict[str, str]) -> None:
    """The probe's cross-attention at a snapshot, in the last decoder layer's head that aligns best
    on it, beside the alignment the corpus states and every head's share of aligned words."""
    probe = result.probe
    source, target = list(probe.source), list(probe.target)
    aligned = aligned_rows(shown.weights, probe).mean(axis=-1)  # (layers, heads)
    head = int(aligned[-1].argmax())
    layer = len(aligned) - 1
    title = t["train_translate_probe"].format(source=probe.source, target=probe.text, step=shown.step)
    st.markdown(f"**{markdown_literal(title)}**")
    left, right = st.columns(2)
    with left:
        weights = shown.weights[layer, head, : len(target)]  # (words, S): EOS's row left out
        fig = matrix_figure(weights, target, source, kind="weights", title=f"L{layer + 1}H{head + 1}", **look)
        widgets.chart(fig, f"training_cross_{shown.step}")
    with right:
        ideal = alignment_matrix(probe)  # (words, S)
        fig = matrix_figure(ideal, target, source, kind="weights", title=t["train_translate_ideal"], **look)
        widgets.chart(fig, "training_alignment")
    st.caption(t["train_translate_match"])
    widgets.per_head_table({t["train_translate_match"]: aligned})
