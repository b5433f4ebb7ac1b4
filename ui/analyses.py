"""Experiments that say what heads are for: knock heads out, follow attention through the stack
(rollout), see one head's queries and keys as points, and name each head's habit. Each is a view
of the experiments section (ui.experiments.LAB_VIEWS); the numbers come from encoder.analysis.
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
from viz import ChartStyle, difference_figure, matrix_figure, number_text, query_key_figure

# The label of each habit, as literal keys of the string tables.
HABIT_LABELS: dict[str, str] = {
    "previous": "habit_previous",
    "next": "habit_next",
    "self": "habit_self",
    "first": "habit_first",
    "sep": "habit_sep",
    "broad": "habit_broad",
    "mixed": "hb_mixed",
}
WEIGHT_DIFFERENCE_RANGE = 0.01  # as the other experiments: rounding stays pale


def habit_captions(weights: np.ndarray, tokens: list[str], t: dict[str, str]) -> list[list[str]]:
    """(layers, heads) each head's habit with its score, as the step view's thumbnails caption
    them ("previous 0.93"); a head with no single habit is "mixed", without a score."""
    scores = head_habits(weights, tokens)  # (layers, heads, habits)
    names = habit_names(scores)  # (layers, heads)
    best = scores.max(axis=-1)  # (layers, heads)
    return [
        [
            t[HABIT_LABELS[name]] if name == "mixed" else f"{t[HABIT_LABELS[name]]} {number_text(float(score), 2)}"
            for name, score in zip(layer_names, layer_best, strict=True)
        ]
        for layer_names, layer_best in zip(names, best, strict=True)
    ]


def _look(style: ChartStyle) -> dict[str, object]:
    return {"labels": session.labels(), "style": style}


def lab_knockout(view: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    """Pick heads; every later layer's attention and the output, with and without them."""
    t = session.strings()
    config, tokens = view.config, tuple(view.tokens)
    st.markdown(f"**{t['ko_title']}**")
    st.markdown(t["ko_text"])
    pairs = [(layer, head) for layer in range(config.n_layers) for head in range(config.n_heads)]
    chosen = st.multiselect(
        t["ko_heads"], pairs, key="lab_ablate", format_func=lambda pair: f"L{pair[0] + 1}H{pair[1] + 1}"
    )
    if not chosen:
        st.info(t["ko_none"])
        return
    ablate = tuple(sorted(chosen))
    knocked = compute.trace_of_tokens(run.key, run.device, tokens, 0, run.upload, ablate=ablate)
    first = min(layer for layer, _ in ablate)
    look = _look(style) | {"min_range": WEIGHT_DIFFERENCE_RANGE}
    for layer in range(first + 1, config.n_layers):
        before = view.weights[layer].mean(axis=0)  # (n, n)
        after = knocked.weights[layer].mean(axis=0)
        fig = difference_figure(
            before,
            after,
            tokens,
            tokens,
            title=t["ko_layer_diff"].format(layer=layer + 1),
            value_label=t["ko_change"],
            a_label=t["ko_before"],
            b_label=t["ko_after"],
            **look,
        )
        widgets.chart(fig, f"knockout_L{layer + 1}")
    output, changed = view.arrays["output"], knocked.arrays["output"]  # (n, d_model) each
    moved = np.linalg.norm(changed - output, axis=-1)
    cosine = (changed * output).sum(axis=-1) / np.maximum(
        np.linalg.norm(changed, axis=-1) * np.linalg.norm(output, axis=-1), 1e-12
    )
    st.caption(t["ko_output"])
    st.dataframe(
        {
            t["ko_col_token"]: list(tokens),
            t["ko_col_change"]: [round(float(x), 4) for x in moved],
            t["ko_col_cosine"]: [round(float(x), 4) for x in cosine],
        },
        hide_index=True,
    )


def lab_rollout(view: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    """The last layer's raw attention beside the rollout through every layer, per query token."""
    t = session.strings()
    tokens = view.tokens
    st.markdown(f"**{t['ro_title']}**")
    st.markdown(t["ro_text"])
    rolled = attention_rollout(view.weights, residual=True)[-1]  # (n, n)
    raw = view.weights[-1].mean(axis=0)  # (n, n)
    left, right = widgets.side_by_side(len(tokens))
    with left:
        widgets.chart(
            matrix_figure(raw, tokens, tokens, kind="weights", title=t["ro_raw"], **_look(style)), "rollout_raw"
        )
    with right:
        title = t["ro_rolled"].format(layers=view.config.n_layers)
        widgets.chart(matrix_figure(rolled, tokens, tokens, kind="weights", title=title, **_look(style)), "rollout")


def lab_query_keys(view: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    """One head's queries and keys on their joint principal plane, with lines for the strongest weights."""
    t = session.strings()
    layer, head = widgets.layer_and_head(view.config, "lab_layer", "lab_head")  # the experiments' own pickers
    points = query_key_points(view.layer(layer, "q")[head], view.layer(layer, "k")[head])
    st.markdown(f"**{t['qk_title']}**")
    st.markdown(t["qk_text"].format(explained=float(points.explained.sum())))
    fig = query_key_figure(
        points.queries,
        points.keys,
        view.tokens,
        view.layer(layer, "weights")[head],
        title=t["qk_chart"].format(layer=layer + 1, head=head + 1),
        **_look(style),
    )
    widgets.chart(fig, f"query_keys_L{layer + 1}H{head + 1}")


def lab_habits(view: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    """Every head's score for each usual pattern, and the name of its strongest: a sortable table."""
    t = session.strings()
    st.markdown(f"**{t['hb_title']}**")
    st.markdown(t["hb_text"])
    scores = head_habits(view.weights, view.tokens)  # (layers, heads, habits)
    names = np.vectorize(lambda name: t[HABIT_LABELS[name]], otypes=[object])(habit_names(scores))
    columns = {t[HABIT_LABELS[habit]]: scores[..., index] for index, habit in enumerate(HABITS)}
    widgets.per_head_table({t["hb_habit"]: names, **columns})


def lab_tokens(view: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    """Several tokens at once, in every head of every layer: where they look together, or who looks at them."""
    t = session.strings()
    tokens = view.tokens
    st.markdown(f"**{t['tk_title']}**")
    st.markdown(t["tk_text"])
    digest = widgets.tokens_digest(tokens)
    chosen = st.multiselect(
        t["tk_tokens"], range(len(tokens)), key=f"lab_tokens_{digest}", format_func=lambda i: f"{i + 1} · {tokens[i]}"
    )
    as_keys = st.toggle(t["tk_as_keys"], key="lab_tokens_as_keys")
    if not chosen:
        st.info(t["tk_none"])
        return
    picked = sorted(chosen)
    values = selected_attention(view.weights, picked, as_keys=as_keys)  # (layers, heads, n)
    layers, heads = values.shape[:2]
    rows = [f"L{layer + 1} H{head + 1}" for layer in range(layers) for head in range(heads)]
    names = " ".join(tokens[i] for i in picked)
    title = t["tk_chart_keys" if as_keys else "tk_chart_queries"].format(tokens=names)
    labels = dataclasses.replace(session.labels(), query=t["tk_rows"])
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
