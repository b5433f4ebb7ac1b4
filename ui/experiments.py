"""Experiments that explain attention: the head view, √d_k and saturation, padding masks,
word order without positions, and two runs side by side. Nothing is computed until one is
chosen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

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
    permutation_difference,
    saturation_config,
    saturation_sweep,
    shuffled,
)
from ui import analyses, compute, errors, session, widgets
from ui.i18n import option_label
from ui.settings import (
    CHOICES,
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


WEIGHT_DIFFERENCE_RANGE = 0.01  # weight differences below this are float rounding: drawn pale


@st.cache_data(max_entries=16, show_spinner=False)
def saturation(tokens: tuple[str, ...], seed: int, positional: str, temperature: float) -> list:
    """The √d_k sweep for one sentence: a few small one-layer models, run once per setting."""
    return saturation_sweep(
        tokens, SATURATION_D_KS, n_heads=SATURATION_HEADS, seed=seed, positional=positional, temperature=temperature
    )


@st.fragment
def experiments(view: TraceArrays, run: compute.Run) -> None:
    """The views that explain why attention is built as it is. In a fragment of its own, and
    nothing is computed until one is chosen."""
    t = session.strings()
    with st.container(key="experiments", border=True):
        st.subheader(t["lab_title"])
        lab = st.radio(
            t["lab"],
            CHOICES["lab"],
            key="lab",
            format_func=option_label(t, "lab"),
            horizontal=True,
            persist_state="session",
        )
        settings = session.settings()
        session.sync_link(settings)
        if lab != "off":
            LAB_VIEWS[lab](view, run, session.chart_style(settings))


def lab_pickers(view: TraceArrays, *, head: bool = True) -> tuple[int, int]:
    """The experiments' own layer (and head) pickers: the step view's live in another fragment."""
    return widgets.layer_and_head(view.config, "lab_layer", "lab_head" if head else None)


def _look(style: ChartStyle) -> dict[str, object]:
    """The words and the look every chart of the experiments shares."""
    return {"labels": session.labels(), "style": style}


def _weights_difference(style: ChartStyle) -> dict[str, object]:
    """The look of a difference of two attention maps: rounding stays pale (WEIGHT_DIFFERENCE_RANGE)."""
    return _look(style) | {"min_range": WEIGHT_DIFFERENCE_RANGE}


def lab_head_view(view: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    t = session.strings()
    layer, _ = lab_pickers(view, head=False)
    tokens = view.tokens
    st.markdown(f"**{t['hv_title'].format(layer=layer + 1)}**")
    st.markdown(t["hv_text"])
    digest = widgets.tokens_digest(tokens)
    picker, diagram = f"hv_token_{digest}", f"hv_chart_{digest}_{layer}"
    selected = st.selectbox(
        t["hv_token"],
        range(len(tokens)),
        index=None,
        key=picker,
        format_func=lambda i: f"{i + 1} · {tokens[i]}",
        placeholder=t["hv_all"],
    )
    # A long sentence has thousands of faint lines: keep those above twice an even share (2/n).
    min_weight = 0.01 if len(tokens) <= MAX_CELLS_PER_AXIS_FOR_VALUES else 2 / len(tokens)
    if min_weight > 0.01:
        st.caption(t["hv_threshold"].format(threshold=min_weight, n=len(tokens)))
    fig = head_view_figure(
        view.weights[layer],
        tokens,
        selected=selected,
        min_weight=min_weight,
        **_look(style),
    )
    events = {"key": diagram, "on_select": lambda: _follow_clicked_token(diagram, picker), "selection_mode": "points"}
    widgets.chart(fig, f"head_view_L{layer + 1}", **events)


def _follow_clicked_token(diagram: str, picker: str) -> None:
    """A click on a token of the head view picks it, as the selectbox above it would."""
    points = st.session_state[diagram].selection.points
    clicked = [token for token in map(head_view_token_at, points) if token is not None]
    if clicked:
        st.session_state[picker] = clicked[0]


def lab_scaling(view: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    t = session.strings()
    config, tokens = view.config, tuple(view.tokens)
    st.markdown(f"**{t['sc_title']}**")
    st.markdown(t["sc_text"].format(seed=config.seed, heads=SATURATION_HEADS))
    if len(tokens) < 2:
        st.info(t["sc_single_token"])
        return
    temperature = st.select_slider(
        t["sc_temperature"], TEMPERATURES, key="lab_temperature", help=t["sc_temperature_help"], persist_state="session"
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
        title=t["sc_saturation"],
        **_look(style),
    )
    widgets.chart(fig, "saturation")
    fig = variance_figure(d_ks, column["score_variance"], title=t["sc_variance"], **_look(style))
    widgets.chart(fig, "score_variance")
    d_k = st.select_slider(t["sc_dk"], SATURATION_D_KS, key="lab_dk", persist_state="session")
    _scaled_and_unscaled(view, run.device, d_k, temperature, style)


def _scaled_and_unscaled(view: TraceArrays, device: str, d_k: int, temperature: float, style: ChartStyle) -> None:
    """The softmax of one head at this d_k, with and without the division by √d_k, side by side."""
    t = session.strings()
    config, tokens = view.config, tuple(view.tokens)
    left, right = widgets.side_by_side(len(tokens))
    model_config = saturation_config(d_k, n_heads=SATURATION_HEADS, seed=config.seed, positional=config.positional)
    key = compute.ModelKey("random", config=model_config)  # one model: scaled or not is the trace's choice
    for column, scale, title in ((left, True, "sc_weights_scaled"), (right, False, "sc_weights_unscaled")):
        run = compute.trace_of_tokens(key, device, tokens, scale=scale, temperature=temperature)
        weights = run.layer(0, "weights")[0]  # (n, n): head 1
        fig = matrix_figure(weights, tokens, tokens, kind="weights", title=t[title].format(d_k=d_k), **_look(style))
        with column:
            widgets.chart(fig, f"weights_dk{d_k}_{'scaled' if scale else 'unscaled'}")


def lab_padding(view: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    t = session.strings()
    key, device, upload = run.key, run.device, run.upload
    tokens, n = tuple(view.tokens), len(view.tokens)
    st.markdown(f"**{t['pad_title']}**")
    st.markdown(t["pad_text"])
    room = min(MAX_PADDING, view.config.limits.max_tokens - n)
    if room < 1:
        st.info(t["pad_no_room"].format(n=n))
        return
    layer, head = lab_pickers(view)
    session.clamp("lab_pad", room + 1)
    padding = st.slider(t["pad_count"], 1, max(room, 2), key="lab_pad", disabled=room < 2, persist_state="session")
    padded = compute.trace_of_tokens(key, device, tokens, padding, upload)
    weights = padded.layer(layer, "weights")  # (heads, n + padding, n + padding)
    where = f"L{layer + 1}H{head + 1}"
    fig = matrix_figure(
        weights[head],
        padded.tokens,
        padded.tokens,
        kind="weights",
        mask=padded.arrays["mask"],
        title=t["pad_weights"].format(pad=padding, where=where),
        **_look(style),
    )
    widgets.chart(fig, f"padding_{where}")
    effect = padding_effect(view, padded)
    st.markdown(t["pad_check"].format(diff=effect.output_change, weight=effect.weight_on_padding))
    st.caption(t["pad_rows"])


def lab_permute(view: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    t = session.strings()
    config, tokens = view.config, view.tokens
    st.markdown(f"**{t['perm_title']}**")
    st.markdown(t["perm_text"])
    # A trained model's [CLS] and [SEP] stay at the ends: what is shuffled is the sentence.
    keep = SENTENCE_MARKERS if view.model_name else ()
    if len({token for token in tokens if token not in keep}) < 2:
        st.info(t["perm_one_token"])
        return
    layer, head = lab_pickers(view)
    left, right = st.columns(2)
    seed = left.number_input(t["perm_seed"], 0, MAX_SHUFFLE, step=1, key="lab_shuffle", persist_state="session")
    positions = right.toggle(t["perm_positions"], key="lab_positions", persist_state="session")
    positional = "sinusoidal" if positions else "none"
    # Random weights of the current shape, never causal: a causal mask ties attention to order by itself.
    shape = {"d_model": config.d_model, "n_heads": config.n_heads, "n_layers": config.n_layers, "seed": config.seed}
    model_config = EncoderConfig(**shape, positional=positional)
    positions_label = option_label(t, "pos")(positional)
    st.caption(
        t["perm_model"].format(
            d_model=config.d_model, heads=config.n_heads, seed=config.seed, positions=positions_label
        )
    )
    shuffled_tokens, order = shuffled(tokens, seed, keep=keep)
    key, device = compute.ModelKey("random", config=model_config), run.device
    original = compute.trace_of_tokens(key, device, tuple(tokens)).layer(layer, "weights")[head]  # (n, n)
    reordered = compute.trace_of_tokens(key, device, tuple(shuffled_tokens)).layer(layer, "weights")[head]  # (n, n)
    where = f"L{layer + 1}H{head + 1}"
    matrix = _look(style) | {"kind": "weights"}
    left, right = widgets.side_by_side(len(tokens))
    with left:
        widgets.chart(
            matrix_figure(original, tokens, tokens, title=t["perm_original"].format(where=where), **matrix), "original"
        )
    with right:
        fig = matrix_figure(
            reordered, shuffled_tokens, shuffled_tokens, title=t["perm_shuffled"].format(where=where), **matrix
        )
        widgets.chart(fig, "shuffled")
    restored, difference = permutation_difference(original, reordered, order)  # (n, n), back in the original order
    fig = difference_figure(
        original,
        restored,
        tokens,
        tokens,
        title=t["perm_restored"],
        value_label=t["perm_difference"],
        a_label=t["perm_original_short"],
        b_label=t["perm_restored_short"],
        **_weights_difference(style),
    )
    widgets.chart(fig, "permutation_difference")
    same = difference < SAME_WEIGHTS_TOLERANCE
    (st.success if same else st.warning)(t["perm_same" if same else "perm_differs"].format(diff=difference))


def lab_compare(view: TraceArrays, run: compute.Run, style: ChartStyle) -> None:
    t = session.strings()
    key, device, text, upload = run.key, run.device, run.text, run.upload
    config = view.config
    st.markdown(f"**{t['cmp_title']}**")
    layer, _ = lab_pickers(view, head=False)
    st.markdown(t["cmp_text"].format(layer=layer + 1))
    state = st.session_state
    keep = {"persist_state": "session"}
    st.text_input(t["cmp_sentence_b"], key="cmp_text", placeholder=t["cmp_same_sentence"], **keep)
    text_b = state.cmp_text if state.cmp_text.strip() else text  # empty: A's sentence, whatever it becomes
    b_key = key
    if key.kind == "random":
        heads = head_options(config.d_model, LIMITS.max_heads)
        if state.cmp_heads not in heads:
            state.cmp_heads = heads[0]
        left, middle, right = st.columns(3)
        heads_b = left.select_slider(t["cmp_heads_b"], heads, key="cmp_heads", **keep)
        seed_b = middle.number_input(t["cmp_seed_b"], 0, MAX_SEED, step=1, key="cmp_seed", **keep)
        scale_b = right.checkbox(t["cmp_scale_b"], key="cmp_scale", **keep)
        b_config = dataclasses.replace(config, n_heads=heads_b, seed=seed_b, scale_scores=scale_b)
        b_key = compute.ModelKey("random", config=b_config)
    else:
        st.caption(t["cmp_trained"])
    try:
        other = compute.compute_trace(b_key, device, text_b, upload)
    except (EmptyTextError, TooManyTokensError) as error:
        (st.info if isinstance(error, EmptyTextError) else st.warning)(errors.explain(t, error))
        return
    a = view.weights[layer].mean(axis=0)  # (n_a, n_a): the heads' average
    b = other.weights[layer].mean(axis=0)  # (n_b, n_b)
    matrix = _look(style) | {"kind": "weights", "value_label": t["mean_weight"]}
    left, right = widgets.side_by_side(max(len(a), len(b)))
    for column, side, run_view, weights in ((left, "cmp_a", view, a), (right, "cmp_b", other, b)):
        desc = run_view.model_name or t["cmp_desc"].format(  # a checkpoint is its name; random weights, its knobs
            heads=run_view.config.n_heads,
            seed=run_view.config.seed,
            scaling=t["sc_scaled" if run_view.config.scale_scores else "sc_unscaled"],
        )
        with column:
            fig = matrix_figure(weights, run_view.tokens, run_view.tokens, title=t[side].format(desc=desc), **matrix)
            widgets.chart(fig, f"compare_{side[-1]}_L{layer + 1}")
    if a.shape != b.shape:
        st.info(t["cmp_lengths"].format(a=a.shape[0], b=b.shape[0]))
        return
    pairs = [x if x == y else f"{x}/{y}" for x, y in zip(view.tokens, other.tokens, strict=True)]
    fig = difference_figure(
        a, b, pairs, pairs, title=t["cmp_diff"], value_label=t["cmp_diff"], **_weights_difference(style)
    )
    widgets.chart(fig, f"compare_difference_L{layer + 1}")


LAB_VIEWS: dict[str, Callable[..., None]] = {
    "heads": lab_head_view,
    "scaling": lab_scaling,
    "padding": lab_padding,
    "permute": lab_permute,
    "compare": lab_compare,
    "knockout": analyses.lab_knockout,
    "rollout": analyses.lab_rollout,
    "qk": analyses.lab_query_keys,
    "habits": analyses.lab_habits,
    "tokens": analyses.lab_tokens,
}
