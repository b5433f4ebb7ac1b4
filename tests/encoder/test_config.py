"""EncoderConfig validation: every invalid field is refused with an error that names it."""

import dataclasses

import pytest

from encoder import LIMITS, ConfigError, EncoderConfig


def test_defaults_are_valid_and_d_ff_defaults_to_four_times_d_model():
    config = EncoderConfig(d_model=96, n_heads=6)
    assert config.d_ff == 4 * 96
    assert config.d_head == 16


def test_config_is_frozen_and_hashable_for_caching():
    config = EncoderConfig()
    assert hash(config) == hash(EncoderConfig())
    assert config == EncoderConfig()
    assert config != EncoderConfig(seed=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.d_model = 8


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("d_model", 0),
        ("d_model", -8),
        ("d_model", LIMITS.max_d_model + 1),
        ("d_model", 64.0),
        ("d_model", True),
        ("d_model", "64"),
        ("n_heads", 0),
        ("n_heads", LIMITS.max_heads + 1),
        ("n_heads", 3),  # 64 is not divisible by 3
        ("n_layers", 0),
        ("n_layers", LIMITS.max_layers + 1),
        ("d_ff", 0),
        ("d_ff", LIMITS.max_d_ff + 1),
        ("seed", -1),
        ("seed", 1.5),
        ("layer_norm", "yes"),
        ("layer_norm", True),
        ("final_norm", 1),
        ("causal", None),
        ("activation", "tanh"),
        ("activation", "ReLU"),
        ("positional", "rotary"),
        ("layer_norm_eps", 0.0),
        ("layer_norm_eps", -1e-5),
        ("layer_norm_eps", float("nan")),
        ("layer_norm_eps", "1e-5"),
        ("scale_scores", "no"),
        ("temperature", 0.0),
        ("temperature", -1.0),
        ("temperature", float("inf")),
        ("temperature", 1000.0),
        ("temperature", True),
    ],
)
def test_invalid_field_raises_value_error_naming_field_and_value(field, value):
    with pytest.raises(ValueError) as raised:
        EncoderConfig(**{"d_model": 64, field: value})
    error = raised.value
    assert isinstance(error, ConfigError)
    assert error.field == field
    assert error.value == value or error.value is value
    assert field in str(error) and repr(value) in str(error)


def test_heads_that_do_not_divide_d_model_list_the_allowed_counts():
    with pytest.raises(ConfigError, match=r"allowed: \[1, 2, 3, 4, 6, 8, 12, 16\]"):
        EncoderConfig(d_model=48, n_heads=5)


def test_range_messages_state_the_allowed_range():
    with pytest.raises(ConfigError, match=f"from 1 to {LIMITS.max_layers}"):
        EncoderConfig(n_layers=LIMITS.max_layers + 1)


def test_largest_allowed_config_is_accepted():
    config = EncoderConfig(
        d_model=LIMITS.max_d_model,
        n_heads=LIMITS.max_heads,
        n_layers=LIMITS.max_layers,
        d_ff=LIMITS.max_d_ff,
    )
    assert config.d_head == LIMITS.max_d_model // LIMITS.max_heads
