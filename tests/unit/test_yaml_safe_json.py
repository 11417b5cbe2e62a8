"""Values written into manifest templates come back unchanged, whatever their characters."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater import yamlio
from headwater.render.common import yaml_safe_json


def _load(text: str) -> object:
    (doc,) = yamlio.load_all(text)
    return doc


SAMPLES = [
    "plain",
    "emoji 😀 and rocket 🚀",
    "a backslash then text that looks like an escape: \\ud83d\\ude00",
    "\\😀",  # an escaped backslash right before a pair
    "line\nbreak\ttab \u2028 \x01",
    {"nested": ["😀", 1, None, True]},
]


@pytest.mark.parametrize("value", SAMPLES)
def test_round_trips_through_yaml(value: object) -> None:
    text = yaml_safe_json(value)
    assert _load(text) == value
    assert _load(f"key: {text}\n") == {"key": value}


def test_plain_json_is_what_yaml_refuses() -> None:
    # The reason the filter exists: JSON's surrogate pairs are not YAML.
    with pytest.raises(Exception, match=r"(?i)surrogate|unicode|escape|character"):
        _load(json.dumps("😀"))


@given(st.text())
def test_any_text_round_trips(value: str) -> None:
    assert _load(yaml_safe_json(value)) == value
