"""Hypothesis strategies for hostile request bodies, shared by the unit tier (fakes) and the
e2e tier (a trained bundle).

Bodies are valid JSON built from the served schema in three ways: a body the model reads;
the same body with *one* value replaced by a hostile one (what broke the service before:
numbers past int64 or float32, NaN and infinities, lone surrogates, malformed weighted values,
wrong shapes), so a single fault is never masked by another; and free-form bodies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from service.features import DenseFeat, Feature, FeatureSchema, VarLenSparseFeat
from service.validation import RequestRules, profile_features

NAN, INF = float("nan"), float("inf")
HOSTILE_STRINGS = [
    "\ud800",
    "a\udfffb",
    "t3:abc",
    "t3:nan",
    "t3:inf",
    "t3:-inf",
    "t3:1e39",
    "t3:",
    ":0.5",
    "t3:1e24",
    "\x00",
    "'; drop",
    'x"y',
    "x" * 300,
    "ü" * 600,
]
HOSTILE_NUMBERS = [NAN, INF, -INF, 2**63, 2**64, -(2**63) - 1, 10**40, 1e24, 1e39, 1e308, -0.0]
HOSTILE_NAMES = ["\ud800", "", "x" * 300, "a\nb", "\x7f", "a b", "é", "sku/1", "%2F"]
BAD_NUMBERS = [NAN, INF, -INF, -1.0, 1e12, 1e39, 2**64, "now", None]


def mostly(common: Sequence[Any], rare: Sequence[Any]) -> st.SearchStrategy[Any]:
    """One of ``common`` about 4 times in 5 (``sampled_from`` is uniform, ``one_of`` is not)."""
    return st.sampled_from([*list(common) * max(1, 4 * len(rare) // max(len(common), 1)), *rare])


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(HOSTILE_STRINGS),
        st.sampled_from(HOSTILE_NUMBERS),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=10),
    )


def values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        scalars(),
        st.lists(scalars(), min_size=1, max_size=4),
        st.lists(st.lists(scalars(), max_size=2), min_size=1, max_size=2),
        st.dictionaries(st.text(max_size=5), scalars(), max_size=2),
    )


KNOWN_HOSTILE = [
    *HOSTILE_STRINGS,
    *HOSTILE_NUMBERS,
    *[[v] for v in HOSTILE_STRINGS + HOSTILE_NUMBERS],
    [[1]],
    {"a": 1},
    ["t1"] * 1001,
]


def hostile() -> st.SearchStrategy[Any]:
    """A hostile value: mostly one known to have broken the service, else anything."""
    known = st.sampled_from(KNOWN_HOSTILE)
    return st.one_of(known, known, known, values())


def valid_value(feature: Feature) -> Any:
    if isinstance(feature, DenseFeat):
        return [0.1] * feature.dim
    if isinstance(feature, VarLenSparseFeat):
        return ["t1:0.5"] if feature.weighted else ["t1"]
    return "t1"


def rows(features: Sequence[Feature], fixed: dict[str, Any] | None = None) -> st.SearchStrategy:
    """Feature dicts: valid, valid with one hostile value, or anything (``fixed`` kept)."""
    fixed = fixed or {}
    base = {f.name: valid_value(f) for f in features} | fixed
    names = sorted(f.name for f in features)
    if not names:
        return st.just(dict(fixed))
    one_fault = st.builds(lambda n, v: {**base, n: v}, st.sampled_from(names), hostile())
    anything = st.dictionaries(mostly(names, HOSTILE_NAMES), values(), max_size=3)
    return st.one_of(st.just(base), one_fault, one_fault, anything.map(lambda d: d | fixed))


def user_ids() -> st.SearchStrategy[str]:
    return mostly(["u1", "u2", "known", "new_user"], ["u 1", "\ud800", "", "x" * 200, "a/b"])


def recommendation_bodies(schema: FeatureSchema) -> st.SearchStrategy[dict[str, Any]]:
    rules = RequestRules.from_schema(schema)
    filterable = sorted(rules.filterable)
    filters = st.one_of(
        st.just({name: ["t1"] for name in filterable}),
        st.builds(lambda n, v: {n: v}, st.sampled_from(filterable), hostile()),
        st.dictionaries(mostly(filterable, HOSTILE_NAMES), st.lists(scalars(), max_size=2)),
    )
    return st.fixed_dictionaries(
        {"user_id": user_ids()},
        optional={
            "k": mostly([1, 10, 20], [0, 201, 2**64, -1, 1.5, "5"]),
            "candidates": mostly([20, 200, 1000], [0, 1001, 10**30]),
            "context": rows(schema.on("context")),
            "user_features": rows(profile_features(schema)),
            "filter": filters,
            "exclude_item_ids": st.lists(mostly(["p1", "i1"], HOSTILE_NAMES), max_size=3),
            "exclude_seen": mostly([True, False], [None, "yes", 1]),
        },
    )


def profile_bodies(schema: FeatureSchema) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"features": rows(profile_features(schema))})


def event_bodies() -> st.SearchStrategy[dict[str, Any]]:
    base = {"item_id": "p1", "type": "read", "ts": 1.7e9, "weight": 1.0}
    bad = st.one_of(st.sampled_from(BAD_NUMBERS), st.sampled_from(BAD_NUMBERS), hostile())
    one_fault = st.builds(lambda k, v: {**base, k: v}, st.sampled_from(sorted(base)), bad)
    event = st.one_of(
        st.just(base), one_fault, one_fault, st.dictionaries(st.sampled_from(sorted(base)), bad)
    )
    return st.fixed_dictionaries({"events": st.lists(event, min_size=1, max_size=3)})


def item_bodies(schema: FeatureSchema) -> st.SearchStrategy[dict[str, Any]]:
    features = [f for f in schema.on("item") if f.name != schema.item_key]
    item = st.fixed_dictionaries(
        {
            "item_id": mostly(["fz1", "fz2", "sku/3 ü'\"%"], [*HOSTILE_NAMES, 7, 2**64, None]),
            "features": rows(features),
        }
    )
    return st.fixed_dictionaries({"items": st.lists(item, min_size=1, max_size=3)})


def encode(body: Any) -> bytes:
    """JSON as a client library may send it: NaN/Infinity tokens, ``\\ud800`` escapes."""
    return json.dumps(body, allow_nan=True).encode()


def user_path(user_id: str) -> str:
    return "/v1/users/" + quote(user_id.encode("utf-8", "surrogatepass"), safe="")
