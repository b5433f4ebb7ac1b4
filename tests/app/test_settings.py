"""Links: every setting round-trips, and every bad value falls back with a notice."""

import dataclasses

import pytest

from encoder import LIMITS, EncoderConfig
from tests.app.page import OLD_DEFAULT_LINK
from ui.settings import D_MODEL_OPTIONS, MAX_TEXT_CHARS, Settings, from_query_params, head_options, to_query_params


def _parse(params):
    return from_query_params(params, LIMITS.max_layers, LIMITS.max_heads)


def test_no_parameters_give_the_defaults():
    assert _parse({}) == (Settings(), [])


def test_every_setting_round_trips_through_a_link():
    settings = Settings(
        text="the cat <b>sat</b> & 我爱你",
        lang="zh",
        model="minilm",
        minilm_n_layers=3,
        d_model=96,
        n_heads=12,
        n_layers=5,
        ff_multiplier=2,
        seed=42,
        positional="none",
        layer_norm="pre",
        activation="gelu",
        causal=True,
        rest=True,
        cpu=True,
        layer=4,
        lesson="attention",
        lesson_stop=4,
        head=11,
        query=3,
        palette="colorblind",
        weight_scale="fit",
        image_format="svg",
        experiment="compare",
        experiment_layer=3,
        experiment_head=10,
        scaling_temperature=0.25,
        scaling_d_k=256,
        padding_count=8,
        shuffle_seed=42,
        shuffle_positions=True,
        compare_sentence="我爱你",
        compare_n_heads=4,
        compare_seed=7,
        compare_scale=False,
        present=True,
        step=5,
        trainer=True,
        train_task="induction",
        train_d_model=64,
        train_n_heads=4,
        train_n_layers=3,
        train_steps=5000,
        train_seed=9,
        translation_weights="trained",
        attention="cross",
        word=3,
        word_layer=1,
        word_head=2,
    )
    untouched = [
        f.name for f in dataclasses.fields(Settings) if getattr(settings, f.name) == getattr(Settings(), f.name)
    ]
    assert untouched == []  # every field differs from its default, so every one is round-tripped
    parsed, notices = _parse(to_query_params(settings))
    assert notices == []
    assert parsed == settings


def test_links_are_one_based():
    params = to_query_params(Settings(layer=1, head=2))
    assert (params["layer"], params["head"]) == ("2", "3")


def test_a_link_carries_only_what_differs_from_the_defaults():
    assert to_query_params(Settings()) == {}  # the default page's link is its address alone
    assert to_query_params(Settings(head=1)) == {"head": "2"}
    assert to_query_params(Settings(text="the cat sat", n_heads=8, layer_norm="none")) == {
        "text": "the cat sat",
        "heads": "8",
        "norm": "none",
    }


def test_an_old_full_link_opens_the_same_view():
    assert _parse(OLD_DEFAULT_LINK) == (Settings(), [])
    old = OLD_DEFAULT_LINK | {"lab": "permute", "lab_layer": "2", "lab_shuffle": "7", "cmp_text": "你好", "head": "3"}
    settings, notices = _parse(old)
    assert notices == []
    assert (settings.experiment, settings.experiment_layer, settings.shuffle_seed) == ("shuffle", 1, 7)
    assert (settings.compare_sentence, settings.head) == ("你好", 2)
    assert _parse({"lab": "heads"})[0].experiment == "head_view"
    assert _parse({"lab": "qk"})[0].experiment == "query_keys"


def test_todays_name_wins_over_an_old_one_and_a_notice_names_the_parameter_as_written():
    assert _parse({"lab": "rollout", "experiment": "habits"})[0].experiment == "habits"
    _, [notice] = _parse({"lab_pad": "99"})
    assert (notice.param, notice.reason) == ("lab_pad", "reason_range")


@pytest.mark.parametrize(
    ("params", "param", "reason"),
    [
        ({"d_model": "-5"}, "d_model", "reason_choice"),
        ({"d_model": "100"}, "d_model", "reason_choice"),
        ({"d_model": "abc"}, "d_model", "reason_not_int"),
        ({"heads": "abc"}, "heads", "reason_not_int"),
        ({"heads": "3"}, "heads", "reason_divisor"),  # 64 % 3 != 0
        ({"heads": "32"}, "heads", "reason_divisor"),
        ({"layers": "999"}, "layers", "reason_range"),
        ({"layers": "0"}, "layers", "reason_range"),
        ({"layer": "3"}, "layer", "reason_range"),  # only 2 layers by default
        ({"layer": "0"}, "layer", "reason_range"),
        ({"head": "9"}, "head", "reason_range"),
        ({"query": "-1"}, "query", "reason_at_least"),  # the last token is known only later
        ({"query": "0"}, "query", "reason_at_least"),
        ({"minilm_layers": "0"}, "minilm_layers", "reason_range"),
        ({"minilm_layers": "7"}, "minilm_layers", "reason_range"),  # MiniLM has six
        ({"seed": "1e9"}, "seed", "reason_not_int"),
        ({"seed": str(2**40)}, "seed", "reason_range"),
        ({"lang": "fr"}, "lang", "reason_choice"),
        ({"pos": "rotary"}, "pos", "reason_choice"),
        ({"cpu": "yes"}, "cpu", "reason_choice"),
        ({"ff": "3"}, "ff", "reason_choice"),
        ({"experiment": "<script>"}, "experiment", "reason_choice"),
        ({"present": "true"}, "present", "reason_choice"),
        ({"step": "8"}, "step", "reason_range"),
        ({"step": "0"}, "step", "reason_range"),
        ({"experiment_layer": "3"}, "experiment_layer", "reason_range"),
        ({"experiment_head": "0"}, "experiment_head", "reason_range"),
        ({"scaling_temperature": "3"}, "scaling_temperature", "reason_choice"),
        ({"scaling_temperature": "nan"}, "scaling_temperature", "reason_choice"),
        ({"scaling_d_k": "100"}, "scaling_d_k", "reason_choice"),
        ({"padding_count": "9"}, "padding_count", "reason_range"),
        ({"shuffle_seed": "-1"}, "shuffle_seed", "reason_range"),
        ({"shuffle_positions": "2"}, "shuffle_positions", "reason_choice"),
        ({"compare_heads": "3"}, "compare_heads", "reason_divisor"),
        ({"compare_seed": "x"}, "compare_seed", "reason_not_int"),
    ],
)
def test_bad_values_fall_back_to_defaults_with_a_notice(params, param, reason):
    settings, notices = _parse(params)
    assert [(n.param, n.reason) for n in notices] == [(param, reason)]
    assert settings == Settings()


@pytest.mark.parametrize("name", ["text", "compare_sentence"])
def test_a_text_longer_than_the_cap_keeps_its_beginning_with_a_notice(name: str):
    text = "word " * 1500  # 7,500 characters
    settings, notices = _parse({name: text})
    assert getattr(settings, name) == text[:MAX_TEXT_CHARS]
    assert [(n.param, n.reason, n.reason_args, n.default) for n in notices] == [
        (name, "reason_cut", {"max": MAX_TEXT_CHARS}, None)
    ]
    assert _parse({name: text[:MAX_TEXT_CHARS]})[1] == []  # at the cap: kept whole, no notice


def test_heads_are_checked_against_the_linked_d_model_and_layer_against_linked_layers():
    settings, notices = _parse({"d_model": "48", "heads": "12", "layers": "6", "layer": "6", "head": "12"})
    assert notices == []
    assert (settings.d_model, settings.n_heads, settings.n_layers, settings.layer, settings.head) == (48, 12, 6, 5, 11)


def test_a_trained_models_layer_and_head_are_checked_against_the_caps_not_the_random_shape():
    settings, notices = _parse({"model": "minilm", "layer": "6", "head": "12", "minilm_layers": "4"})
    assert notices == []
    assert (settings.model, settings.layer, settings.head, settings.minilm_n_layers) == ("minilm", 5, 11, 4)
    _, [notice] = _parse({"model": "upload", "head": "17"})
    assert notice.param == "head"


def test_a_notice_keeps_the_value_short_and_names_the_default():
    _, [notice] = _parse({"layers": "9" * 500})
    assert len(notice.value) <= 80
    assert notice.default == Settings().n_layers


def test_every_offered_shape_is_a_valid_encoder_config():
    for d_model in D_MODEL_OPTIONS:
        for heads in head_options(d_model, LIMITS.max_heads):
            settings = dataclasses.replace(Settings(), d_model=d_model, n_heads=heads)
            EncoderConfig(d_model=settings.d_model, n_heads=settings.n_heads, d_ff=4 * d_model)
    assert head_options(64, 16) == [1, 2, 4, 8, 16]
