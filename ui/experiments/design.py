"""Experiments on why attention is built as it is: the head view, why the scores are divided by
√d_k, the padding mask, shuffled words without positions, and two runs side by side. Each is one
of the experiments section's views (`ui.experiments.EXPERIMENTS`); the numbers come from the
real encoder (`encoder.experiments`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from encoder import (
    LIMITS,
    SAME_WEIGHTS_TOLERANCE,
    SENTENCE_MARKERS,
    EmptyTextError,
    EncoderConfig,
    TooManyTokensError,
    TraceArrays,
    padding_effect,
    saturation_config,
    saturation_sweep,
    shuffle_difference,
    shuffled,
)
from ui import compute, errors, session, widgets
from ui.i18n import option_label
from ui.settings import (
    MAX_PADDING,
    MAX_SEED,
    MAX_SHUFFLE,
    SATURATION_D_KS,
    TEMPERATURES,
    head_options,
)
from viz import (
    MAX_CELLS_PER_AXIS_FOR_VALUES,
    ChartStyle,
    difference_figure,
    head_view_figure,
    head_view_token_at,
    matrix_figure,
    saturation_figure,
    variance_figure,
)

SATURATION_HEADS = 4  # four heads' scores per point: a three-token sentence still gives a steady curve


@st.cache_data(max_entries=16, show_spinner=False)
def saturation(tokens: tuple[str, ...], seed: int, positional: str, temperature: float) -> list:
    """The √d_k sweep for one sentence: a few small one-layer models, run once per setting."""
    return saturation_sweep(
        tokens, SATURATION_D_KS, n_heads=SATURATION_HEADS, seed=seed, positional=positional, temperature=temperature
    )


def head_view(trace: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    t = session.strings()
    layer, _ = widgets.layer_and_head(trace.config, "experiment_layer")
    tokens = trace.tokens
    st.markdown(f"**{t['head_view_title'].format(layer=layer + 1)}**")
    st.markdown(t["head_view_text"])
    digest = widgets.tokens_digest(tokens)
    picker, diagram = f"head_view_token_{digest}", f"head_view_chart_{digest}_{layer}"
    selected = st.selectbox(
        t["head_view_token"],
        range(len(tokens)),
        index=None,
        key=picker,
        format_func=lambda i: f"{i + 1} · {tokens[i]}",
        placeholder=t["head_view_all"],
    )
    # A long sentence has thousands of faint lines: keep those above twice an even share (2/n).
    min_weight = 0.01 if len(tokens) <= MAX_CELLS_PER_AXIS_FOR_VALUES else 2 / len(tokens)
    if min_weight > 0.01:
        st.caption(t["head_view_threshold"].format(threshold=min_weight, n=len(tokens)))
    fig = head_view_figure(
        trace.weights[layer],
        tokens,
        selected=selected,
        min_weight=min_weight,
        **widgets.look(style),
    )
    events = {"key": diagram, "on_select": lambda: _follow_clicked_token(diagram, picker), "selection_mode": "points"}
    widgets.chart(fig, f"head_view_L{layer + 1}", **events)


def _follow_clicked_token(diagram: str, picker: str) -> None:
    """A click on a token of the head view picks it, as the selectbox above it would."""
    points = st.session_state[diagram].selection.points
    clicked = [token for token in map(head_view_token_at, points) if token is not None]
    if clicked:
        st.session_state[picker] = clicked[0]


def scaling(trace: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    t = session.strings()
    config, tokens = trace.config, tuple(trace.tokens)
    st.markdown(f"**{t['scaling_title']}**")
    st.markdown(t["scaling_text"].format(seed=config.seed, heads=SATURATION_HEADS))
    if len(tokens) < 2:
        st.info(t["scaling_single_token"])
        return
    temperature = st.select_slider(
        t["scaling_temperature"],
        TEMPERATURES,
        key="scaling_temperature",
        help=t["scaling_temperature_help"],
        persist_state="session",
    )
    points = saturation(tokens, config.seed, config.positional, temperature)
    d_ks = [p.d_k for p in points]
    column = {name: np.array([getattr(p, name) for p in points]) for name in dataclasses.asdict(points[0])}
    fig = saturation_figure(
        d_ks,
        column["max_weight_scaled"],
        column["max_weight_unscaled"],
        column["entropy_scaled"],
        column["entropy_unscaled"],
        points[0].uniform_entropy,
        title=t["scaling_saturation"],
        **widgets.look(style),
    )
    widgets.chart(fig, "saturation")
    fig = variance_figure(d_ks, column["score_variance"], title=t["scaling_variance"], **widgets.look(style))
    widgets.chart(fig, "score_variance")
    d_k = st.select_slider(t["scaling_dk"], SATURATION_D_KS, key="scaling_d_k", persist_state="session")
    _scaled_and_unscaled(trace, run.device, d_k, temperature, style)


def _scaled_and_unscaled(trace: TraceArrays, device: str, d_k: int, temperature: float, style: ChartStyle) -> None:
    """The softmax of one head at this d_k, with and without the division by √d_k, side by side."""
    t = session.strings()
    config, tokens = trace.config, tuple(trace.tokens)
    left, right = widgets.side_by_side(len(tokens))
    model_config = saturation_config(d_k, n_heads=SATURATION_HEADS, seed=config.seed, positional=config.positional)
    key = compute.ModelKey("random", config=model_config)  # one model: scaled or not is the trace's choice
    for column, scale, title in ((left, True, "scaling_weights_scaled"), (right, False, "scaling_weights_unscaled")):
        traced = compute.trace_of_tokens(key, device, tokens, scale=scale, temperature=temperature)
        weights = traced.layer(0, "weights")[0]  # (n, n): head 1
        fig = matrix_figure(
            weights, tokens, tokens, kind="weights", title=t[title].format(d_k=d_k), **widgets.look(style)
        )
        with column:
            widgets.chart(fig, f"weights_dk{d_k}_{'scaled' if scale else 'unscaled'}")


def padding(trace: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    t = session.strings()
    key, device, upload_data = run.key, run.device, run.upload_data
    tokens, n = tuple(trace.tokens), len(trace.tokens)
    st.markdown(f"**{t['padding_title']}**")
    st.markdown(t["padding_text"])
    room = min(MAX_PADDING, trace.config.limits.max_tokens - n)
    if room < 1:
        st.info(t["padding_no_room"].format(n=n))
        return
    layer, head = widgets.layer_and_head(trace.config, "experiment_layer", "experiment_head")
    session.clamp("padding_count", room + 1)
    pads = st.slider(
        t["padding_count"], 1, max(room, 2), key="padding_count", disabled=room < 2, persist_state="session"
    )
    padded = compute.trace_of_tokens(key, device, tokens, pads, upload_data)
    weights = padded.layer(layer, "weights")  # (heads, n + padding, n + padding)
    where = f"L{layer + 1}H{head + 1}"
    fig = matrix_figure(
        weights[head],
        padded.tokens,
        padded.tokens,
        kind="weights",
        mask=padded.arrays["mask"],
        title=t["padding_weights"].format(pad=pads, where=where),
        **widgets.look(style),
    )
    widgets.chart(fig, f"padding_{where}")
    effect = padding_effect(trace, padded)
    st.markdown(t["padding_check"].format(diff=effect.output_change, weight=effect.weight_on_padding))
    st.caption(t["padding_rows"])


def shuffle(trace: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    t = session.strings()
    config, tokens = trace.config, trace.tokens
    st.markdown(f"**{t['shuffle_title']}**")
    st.markdown(t["shuffle_text"])
    # A trained model's [CLS] and [SEP] stay at the ends: what is shuffled is the sentence.
    keep = SENTENCE_MARKERS if trace.model_name else ()
    if len({token for token in tokens if token not in keep}) < 2:
        st.info(t["shuffle_one_token"])
        return
    layer, head = widgets.layer_and_head(trace.config, "experiment_layer", "experiment_head")
    left, right = st.columns(2)
    seed = left.number_input(t["shuffle_seed"], 0, MAX_SHUFFLE, step=1, key="shuffle_seed", persist_state="session")
    positions = right.toggle(t["shuffle_positions"], key="shuffle_positions", persist_state="session")
    positional = "sinusoidal" if positions else "none"
    # Random weights of the current shape, never causal: a causal mask ties attention to order by itself.
    shape = {"d_model": config.d_model, "n_heads": config.n_heads, "n_layers": config.n_layers, "seed": config.seed}
    model_config = EncoderConfig(**shape, positional=positional)
    positions_label = option_label(t, "positional")(positional)
    st.caption(
        t["shuffle_model"].format(
            d_model=config.d_model, heads=config.n_heads, seed=config.seed, positions=positions_label
        )
    )
    shuffled_tokens, order = shuffled(tokens, seed, keep=keep)
    key, device = compute.ModelKey("random", config=model_config), run.device
    original = compute.trace_of_tokens(key, device, tuple(tokens)).layer(layer, "weights")[head]  # (n, n)
    reordered = compute.trace_of_tokens(key, device, tuple(shuffled_tokens)).layer(layer, "weights")[head]  # (n, n)
    where = f"L{layer + 1}H{head + 1}"
    matrix = widgets.look(style) | {"kind": "weights"}
    left, right = widgets.side_by_side(len(tokens))
    with left:
        widgets.chart(
            matrix_figure(original, tokens, tokens, title=t["shuffle_original"].format(where=where), **matrix),
            "shuffle_original",
        )
    with right:
        fig = matrix_figure(
            reordered, shuffled_tokens, shuffled_tokens, title=t["shuffle_shuffled"].format(where=where), **matrix
        )
        widgets.chart(fig, "shuffle_reordered")
    restored, difference = shuffle_difference(original, reordered, order)  # (n, n), back in the original order
    fig = difference_figure(
        original,
        restored,
        tokens,
        tokens,
        title=t["shuffle_restored"],
        value_label=t["shuffle_difference"],
        a_label=t["shuffle_original_short"],
        b_label=t["shuffle_restored_short"],
        **widgets.difference_look(style),
    )
    widgets.chart(fig, "shuffle_difference")
    same = difference < SAME_WEIGHTS_TOLERANCE
    (st.success if same else st.warning)(t["shuffle_same" if same else "shuffle_differs"].format(diff=difference))


def compare(trace: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    t = session.strings()
    key, device, text, upload_data = run.key, run.device, run.text, run.upload_data
    config = trace.config
    st.markdown(f"**{t['compare_title']}**")
    layer, _ = widgets.layer_and_head(trace.config, "experiment_layer")
    st.markdown(t["compare_text"].format(layer=layer + 1))
    state = st.session_state
    keep = {"persist_state": "session"}
    st.text_input(t["compare_sentence_b"], key="compare_sentence", placeholder=t["compare_same_sentence"], **keep)
    # Empty: A's sentence, whatever it becomes.
    text_b = state.compare_sentence if state.compare_sentence.strip() else text
    b_key = key
    if key.kind == "random":
        heads = head_options(config.d_model, LIMITS.max_heads)
        if state.compare_n_heads not in heads:
            state.compare_n_heads = heads[0]
        left, middle, right = st.columns(3)
        heads_b = left.select_slider(t["compare_heads_b"], heads, key="compare_n_heads", **keep)
        seed_b = middle.number_input(t["compare_seed_b"], 0, MAX_SEED, step=1, key="compare_seed", **keep)
        scale_b = right.checkbox(t["compare_scale_b"], key="compare_scale", **keep)
        b_config = dataclasses.replace(config, n_heads=heads_b, seed=seed_b, scale_scores=scale_b)
        b_key = compute.ModelKey("random", config=b_config)
    else:
        st.caption(t["compare_trained"])
    try:
        other = compute.compute_trace(b_key, device, text_b, upload_data)
    except (EmptyTextError, TooManyTokensError) as error:
        (st.info if isinstance(error, EmptyTextError) else st.warning)(errors.explain(t, error))
        return
    a = trace.weights[layer].mean(axis=0)  # (n_a, n_a): the heads' average
    b = other.weights[layer].mean(axis=0)  # (n_b, n_b)
    matrix = widgets.look(style) | {"kind": "weights", "value_label": t["mean_weight"]}
    left, right = widgets.side_by_side(max(len(a), len(b)))
    for column, name, side, weights in ((left, "compare_a", trace, a), (right, "compare_b", other, b)):
        desc = side.model_name or t["compare_desc"].format(  # a checkpoint is its name; random weights, its knobs
            heads=side.config.n_heads,
            seed=side.config.seed,
            scaling=t["scaling_scaled" if side.config.scale_scores else "scaling_unscaled"],
        )
        with column:
            fig = matrix_figure(weights, side.tokens, side.tokens, title=t[name].format(desc=desc), **matrix)
            widgets.chart(fig, f"compare_{name[-1]}_L{layer + 1}")
    if a.shape != b.shape:
        st.info(t["compare_lengths"].format(a=a.shape[0], b=b.shape[0]))
        return
    pairs = [x if x == y else f"{x}/{y}" for x, y in zip(trace.tokens, other.tokens, strict=True)]
    fig = difference_figure(
        a, b, pairs, pairs, title=t["compare_diff"], value_label=t["compare_diff"], **widgets.difference_look(style)
    )
    widgets.chart(fig, f"compare_difference_L{layer + 1}")
