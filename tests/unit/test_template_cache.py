"""The parsed-template cache: a hit gives exactly what parsing would, as a fresh copy."""

from __future__ import annotations

import datetime as dt

import pytest

from headwater import yamlio
from headwater.render import common

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  x: "1"
---
apiVersion: v1
kind: Service
metadata:
  name: b
spec:
  ports: [{port: 9092, name: kafka}]
  ratio: 1.5
  flag: true
"""


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = yamlio.load_all

    def counting(text: str) -> list[object]:
        seen.append(text)
        return real(text)

    monkeypatch.setattr(yamlio, "load_all", counting)
    return seen


def test_a_repeated_text_is_parsed_once_and_each_caller_gets_its_own_copy(
    parses: list[str],
) -> None:
    cache = common._ParsedTemplates()
    first = cache.load(MANIFEST)
    second = cache.load(MANIFEST)
    assert parses == [MANIFEST]
    assert second == first == yamlio.load_all(MANIFEST)
    second[1]["spec"]["ports"][0]["port"] = 1
    assert cache.load(MANIFEST)[1]["spec"]["ports"][0]["port"] == 9092


@pytest.mark.parametrize(
    "text",
    [
        "kind: A\nwhen: 2026-11-26\n",  # a YAML timestamp
        "kind: A\ndata:\n  8080: web\n",  # an int key JSON would turn into "8080"
        "kind: A\nv: .nan\n",  # NaN is not equal to itself after a round trip
    ],
)
def test_texts_json_cannot_carry_are_parsed_every_time(parses: list[str], text: str) -> None:
    cache = common._ParsedTemplates()
    assert cache.load(text) == cache.load(text) or "nan" in text
    assert len(parses) == 2


def test_a_date_comes_back_as_a_date() -> None:
    doc = common._ParsedTemplates().load("kind: A\nwhen: 2026-11-26\n")[0]
    assert doc["when"] == dt.date(2026, 11, 26)


def test_the_cache_keeps_only_the_most_recent_texts(parses: list[str]) -> None:
    cache = common._ParsedTemplates(size=2)
    texts = [f"kind: A\nn: {i}\n" for i in range(3)]
    for text in texts:
        cache.load(text)
    cache.load(texts[2])  # still cached
    cache.load(texts[0])  # dropped as the oldest
    assert parses == [*texts, texts[0]]


def test_empty_documents_are_dropped_as_before() -> None:
    assert common._ParsedTemplates().load("---\nkind: A\n---\n") == [{"kind": "A"}]
