"""The encoder–decoder's page: a sentence translated by the translator (random weights of the
sidebar's shape, or the one "Train a model" trained with the task "translate"), the attention
the step view shows ("Attention": the encoder's, the decoder's masked self-attention, or
cross-attention, target × source), and the generation replayed token by token with its
cross-attention (ui.generation), drawn in the browser.

The decoder is causal, so one trace of the finished translation holds every step of it: row t of
each decoder map is what position t computed when it chose word t (encoder.translation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import streamlit as st

from encoder import ConfigError, EmptyTextError, EncoderDecoderConfig, EncoderError, TraceArrays, Translator
from encoder.translation import Translation, attention_arrays, source_vocabulary
from ui import compute, errors, generation, session, step_view, trainings
from ui.i18n import option_label, texts
from ui.settings import CHOICES, Settings
from viz import MASK_MARK, ChartStyle, markdown_literal
from viz.generation import GENERATION_STRING_KEYS


@dataclass(frozen=True)
class Translated:
    """A sentence through one translator: the translation and the step view's two square traces."""

    translation: Translation
    encoder: TraceArrays  # the encoder's self-attention over the source
    decoder: TraceArrays  # the decoder's masked self-attention over its input, <s> first
    cross: TraceArrays  # cross-attention: the decoder's positions over the source (key_tokens)


def translator_nbytes(config: EncoderDecoderConfig) -> int:
    """About the bytes of a translator's float32 weights: per encoder layer W_Q, W_K, W_V, W_O and the
    FFN, per decoder layer twice the attention (self and cross) and the FFN."""
    attention, ffn = 4 * config.d_model**2, 2 * config.d_model * config.d_ff
    return 4 * (config.n_encoder_layers * (attention + ffn) + config.n_decoder_layers * (2 * attention + ffn))


def random_translator(config: EncoderDecoderConfig, device: str) -> Translator:
    """A translator of random weights, per shape and device, shared by every session; a large one
    (the largest shape holds 1.4 GB and builds in seconds) one at a time, as compute's large models."""
    return compute.by_size(translator_nbytes(config), _small_translator, _large_translator, config, device)


@st.cache_resource(max_entries=16, show_spinner=False)
def _small_translator(config: EncoderDecoderConfig, device: str) -> Translator:
    return Translator(config, device=None if device == "auto" else device)


@st.cache_resource(max_entries=2, show_spinner=False)
def _large_translator(config: EncoderDecoderConfig, device: str) -> Translator:
    return Translator(config, device=None if device == "auto" else device)


def translate(model_id: str, translator: Translator, text: str) -> Translated:
    """One translation per (translator, sentence), shared by every session; a large translator's
    (a greedy decoding is a trace per word) one at a time. Raises EmptyTextError or
    UnknownCharactersError."""
    return compute.by_size(translator_nbytes(translator.config), _translate, _translate, model_id, translator, text)


@st.cache_resource(max_entries=32, show_spinner=False)  # a translation holds at most ~10 MB (the largest shape)
def _translate(model_id: str, _translator: Translator, text: str) -> Translated:
    """`translate`, cached: `model_id` names the translator in the cache."""
    translation = _translator.translate(text)
    return Translated(
        translation,
        attention_arrays(_translator, translation, "encoder"),
        attention_arrays(_translator, translation, "decoder"),
        attention_arrays(_translator, translation, "cross"),
    )


def config_of(settings: Settings) -> EncoderDecoderConfig:
    """The random translator's shape: the sidebar's, with its layers in the encoder and the decoder each."""
    return EncoderDecoderConfig(
        d_model=settings.d_model, n_heads=settings.n_heads, n_encoder_layers=settings.n_layers,
        n_decoder_layers=settings.n_layers, d_ff=settings.ff_multiplier * settings.d_model,
        layer_norm=settings.layer_norm, activation=settings.activation, seed=settings.seed,
    )  # fmt: skip


def translator_or_message(settings: Settings) -> tuple[str, str, Translator] | None:
    """(model id, model name, translator) the settings choose, or None after saying why not."""
    t = session.strings()
    device = "cpu" if settings.cpu else "auto"
    if settings.translation_weights == "trained":
        digest = trainings.translation_digest(settings)
        if digest is None:
            st.info(t["translation_trained_needed"])
            return None
        return digest, t["translation_trained_name"].format(steps=settings.train_steps), trainings.model_of(digest)
    try:
        config = config_of(settings)
    except ConfigError as error:
        st.error(errors.explain(t, error))
        return None
    return f"random {config!r} {device}", t["random_name"].format(seed=settings.seed), random_translator(config, device)


def section(settings: Settings) -> None:
    """The translation, the attention chosen in the step view, and the generation step by step."""
    t = session.strings()
    chosen = translator_or_message(settings)
    if chosen is None:
        return
    model_id, name, translator = chosen
    try:
        translated = translate(model_id, translator, settings.text)
    except EmptyTextError as error:
        st.info(errors.explain(t, error))
        return
    except EncoderError as error:  # characters the model never saw: the message lists those it knows
        st.warning(errors.explain(t, error))
        return
    translation = translated.translation
    st.markdown(f"**{t['translation_result']}**")
    st.code(f"{''.join(translation.source)}  →  {translation.text}", language=None, wrap_lines=True)
    config = translator.config
    st.caption(
        t["translation_summary"].format(
            model=name, d_model=config.d_model, heads=config.n_heads, encoder_layers=config.n_encoder_layers,
            decoder_layers=config.n_decoder_layers, device=translator.device.type.upper(),
        )
    )  # fmt: skip
    # persist_state: on another model the radio is not drawn, and its value must outlive that run.
    st.radio(t["attention"], CHOICES["attention"], key="attention", format_func=option_label(t, "attention"),
             horizontal=True, persist_state="session")  # fmt: skip
    kind = settings.attention
    text = {"encoder": t["attention_encoder_text"], "decoder": t["attention_decoder_text"].format(mark=MASK_MARK),
            "cross": t["attention_cross_text"]}[kind]  # fmt: skip
    st.caption(markdown_literal(text))
    trace = {"encoder": translated.encoder, "decoder": translated.decoder, "cross": translated.cross}[kind]
    step_view.section(trace, hashlib.sha256(repr((model_id, settings.text, kind)).encode()).hexdigest()[:16])
    st.subheader(t["generation_title"])
    payload = generation_payload(model_id, settings.text, settings.lang, session.chart_style(settings), translation)
    st.fragment(_generation)(payload, len(translation.emitted), translator.config)


@st.cache_resource(max_entries=32, show_spinner=False)  # never changed: `generation.show` sends a copy
def generation_payload(model_id: str, text: str, lang: str, style: ChartStyle, _translation: Translation) -> dict:
    """The generation element's payload, built once per translation, language and look (every
    weight as JSON, and its hash), not on every run of a page."""
    strings = {key: texts(lang)[key] for key in GENERATION_STRING_KEYS}
    return generation.payload_of(_translation, strings, style)


# The generation's view in the settings (and so in the link and a class), as the browser reports it.
GENERATION_FIELDS: tuple[str, ...] = ("word", "word_layer", "word_head")


def _generation(payload: dict, n_steps: int, config: EncoderDecoderConfig) -> None:
    """The generation element, in a fragment of its own: the browser's report of its view reruns
    this alone, which writes the link (and on a teacher's page, the class)."""
    session.clamp("word", n_steps + 1)
    session.clamp("word_layer", config.n_decoder_layers)
    session.clamp("word_head", config.n_heads)
    settings = session.settings()
    session.sync_link(settings)
    generation.show(payload, generation_command(settings), on_view_change=_reported_view)


def _reported_view() -> None:
    """The view the browser reports, into the settings: whole numbers of at least 0, as a link's
    values are checked; `_generation` fits them to the translation."""
    state = st.session_state.get("generation")
    reported = state.get("view") if isinstance(state, Mapping) else None
    if not isinstance(reported, Mapping):
        return
    values = {name: reported.get(name) for name in GENERATION_FIELDS}
    if all(isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10_000 for value in values.values()):
        st.session_state.update(values)
        st.session_state.generation_reported = tuple(values.values())


def generation_command(settings: Settings) -> dict[str, int]:
    """Where the server puts the generation's view: the settings' word, layer and head, under a
    revision that grows only when they changed by something other than the browser's own report (a
    link, a class's teacher), so that the browser keeps its view otherwise."""
    state = st.session_state
    current = tuple(getattr(settings, name) for name in GENERATION_FIELDS)
    held = state.get("generation_commanded")
    if held is None:
        held = (current, session.first_revision())
    elif current != held[0]:
        held = (current, held[1] if current == state.get("generation_reported") else held[1] + 1)
    state.generation_commanded = held
    word, layer, head = held[0]
    return {"word": word, "layer": layer, "head": head, "revision": held[1]}


def vocabulary_caption() -> str:
    """The characters the translator reads, for the sidebar."""
    return session.strings()["translation_caption"].format(vocabulary=" ".join(source_vocabulary()))
