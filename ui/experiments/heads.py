"""Experiments on what heads are for: knock heads out, follow attention through the stack
(rollout), see one head's queries and keys as points, name each head's habit, and follow several
tokens through every head. Each is one of the experiments section's views
(`ui.experiments.EXPERIMENTS`); the numbers come from `encoder.experiments`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from encoder import (
    HABITS,
    TraceArrays,
    attention_rollout,
    habit_names,
    head_habits,
    query_key_points,
    selected_attention,
)
from ui import compute, session, widgets
from ui.i18n import HABIT_LABELS
from viz import ChartStyle, difference_figure, matrix_figure, query_key_figure


def knockout(trace: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    """Pick heads; every later layer's attention and the output, with and without them."""
    t = session.strings()
    config, tokens = trace.config, tuple(trace.tokens)
    st.markdown(f"**{t['knockout_title']}**")
    st.markdown(t["knockout_text"])
    pairs = [(layer, head) for layer in range(config.n_layers) for head in range(config.n_heads)]
    chosen = st.multiselect(
        t["knockout_heads"], pairs, key="knockout_heads", format_func=lambda pair: f"L{pair[0] + 1}H{pair[1] + 1}"
    )
    if not chosen:
        st.info(t["knockout_none"])
        return
    ablate = tuple(sorted(chosen))
    knocked = compute.trace_of_tokens(run.key, run.device, tokens, 0, run.upload_data, ablate=ablate)
    first = min(layer for layer, _ in ablate)
    look = widgets.difference_look(style)
    for layer in range(first + 1, config.n_layers):
        before = trace.weights[layer].mean(axis=0)  # (n, n)
        after = knocked.weights[layer].mean(axis=0)
        fig = difference_figure(
            before,
            after,
            tokens,
            tokens,
            title=t["knockout_layer_diff"].format(layer=layer + 1),
            value_label=t["knockout_change"],
            a_label=t["knockout_before"],
            b_label=t["knockout_after"],
            **look,
        )
        widgets.chart(fig, f"knockout_L{layer + 1}")
    output, changed = trace.arrays["output"], knocked.arrays["output"]  # (n, d_model) each
    moved = np.linalg.norm(changed - output, axis=-1)
    cosine = (changed * output).sum(axis=-1) / np.maximum(
        np.linalg.norm(changed, axis=-1) * np.linalg.norm(output, axis=-1), 1e-12
    )
    st.caption(t["knockout_output"])
    st.dataframe(
        {
            t["knockout_col_token"]: list(tokens),
            t["knockout_col_change"]: [round(float(x), 4) for x in moved],
            t["knockout_col_cosine"]: [round(float(x), 4) for x in cosine],
        },
        hide_index=True,
    )


def rollout(trace: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    """The last layer's raw attention beside the rollout through every layer, per query token."""
    t = session.strings()
    tokens = trace.tokens
    st.markdown(f"**{t['rollout_title']}**")
    st.markdown(t["rollout_text"])
    rolled = attention_rollout(trace.weights, residual=True)[-1]  # (n, n)
    raw = trace.weights[-1].mean(axis=0)  # (n, n)
    left, right = widgets.side_by_side(len(tokens))
    with left:
        widgets.chart(
            matrix_figure(raw, tokens, tokens, kind="weights", title=t["rollout_raw"], **widgets.look(style)),
            "rollout_raw",
        )
    with right:
        title = t["rollout_rolled"].format(layers=trace.config.n_layers)
        widgets.chart(
            matrix_figure(rolled, tokens, tokens, kind="weights", title=title, **widgets.look(style)), "rollout"
        )


def query_keys(trace: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    """One head's queries and keys on their joint principal plane, with lines for the strongest weights."""
    t = session.strings()
    layer, head = widgets.layer_and_head(trace.config, "experiment_layer", "experiment_head")
    points = query_key_points(trace.layer(layer, "q")[head], trace.layer(layer, "k")[head])
    st.markdown(f"**{t['query_keys_title']}**")
    st.markdown(t["query_keys_text"].format(explained=float(points.explained.sum())))
    fig = query_key_figure(
        points.queries,
        points.keys,
        trace.tokens,
        trace.layer(layer, "weights")[head],
        title=t["query_keys_chart"].format(layer=layer + 1, head=head + 1),
        **widgets.look(style),
    )
    widgets.chart(fig, f"query_keys_L{layer + 1}H{head + 1}")


def habits(trace: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    """Every head's score for each usual pattern, and the name of its strongest: a sortable table."""
    t = session.strings()
    st.markdown(f"**{t['habits_title']}**")
    st.markdown(t["habits_text"])
    scores = head_habits(trace.weights, trace.tokens)  # (layers, heads, habits)
    names = np.vectorize(lambda name: t[HABIT_LABELS[name]], otypes=[object])(habit_names(scores))
    columns = {t[HABIT_LABELS[habit]]: scores[..., index] for index, habit in enumerate(HABITS)}
    widgets.per_head_table({t["habits_habit"]: names, **columns})


def several_tokens(trace: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    """Several tokens at once, in every head of every layer: where they look together, or who looks at them."""
    t = session.strings()
    tokens = trace.tokens
    st.markdown(f"**{t['tokens_title']}**")
    st.markdown(t["tokens_text"])
    digest = widgets.tokens_digest(tokens)
    chosen = st.multiselect(
        t["tokens_picker"],
        range(len(tokens)),
        key=f"tokens_picked_{digest}",
        format_func=lambda i: f"{i + 1} · {tokens[i]}",
    )
    as_keys = st.toggle(t["tokens_as_keys"], key="tokens_as_keys_toggle")
    if not chosen:
        st.info(t["tokens_none"])
        return
    picked = sorted(chosen)
    values = selected_attention(trace.weights, picked, as_keys=as_keys)  # (layers, heads, n)
    layers, heads = values.shape[:2]
    rows = [f"L{layer + 1} H{head + 1}" for layer in range(layers) for head in range(heads)]
    names = " ".join(tokens[i] for i in picked)
    title = t["tokens_chart_keys" if as_keys else "tokens_chart_queries"].format(tokens=names)
    labels = dataclasses.replace(session.labels(), query=t["tokens_rows"])
    axis = {"key": session.labels().query} if as_keys else {}  # the columns are queries when the tokens are keys
    fig = matrix_figure(
        values.reshape(layers * heads, -1),
        rows,
        tokens,
        kind="weights",
        title=title,
        labels=dataclasses.replace(labels, **axis),
        style=style,
    )
    widgets.chart(fig, "tokens_as_keys" if as_keys else "tokens_as_queries")
