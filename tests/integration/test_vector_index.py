"""One contract for every `VectorIndex` adapter: NumPy exact, Milvus Lite file, Lite server.

Expected results are worked out by hand from a catalog of items laid on a circle: item k
sits at angle 10*k degrees from the query, so its score is cos(10k deg) and the ranking is
the catalog order.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.index import (
    CollectionMismatch,
    CollectionNotFound,
    InvalidFilter,
    InvalidRequest,
    ScalarField,
    VectorIndex,
    open_index,
)
from service.index.exact import ExactIndex
from service.index.lite_server import LiteServer
from service.index.milvus import MilvusIndex
from service.loopback import free_port
from tests.integration.index_support import clustered_unit_vectors, queries_near, recall

REPO = Path(__file__).resolve().parents[2]
DIM = 4
FIELDS = [
    ScalarField("category", "string", max_length=64),
    ScalarField("year", "int"),
    ScalarField("available", "bool"),
    ScalarField("genres", "string_array", max_length=32, max_capacity=8),
]
# id, angle from the query (degrees), category, year, available, genres
CATALOG = [
    ("a", 0, "book", 2001, True, ["drama"]),
    ("b", 10, "film", 2002, False, ["drama", "comedy"]),
    ("c", 20, "book", 2003, True, []),
    ("d", 30, "film", 2001, True, ["comedy"]),
    ("e", 40, "music", 2002, True, ["jazz"]),
    ("f", 50, "book", 2003, False, ["jazz", "drama"]),
    ("g", 60, "film", 2004, True, ["horror"]),
    ("h", 70, "music", 2001, False, []),
]
QUERY = np.array([2.0, 0.0, 0.0, 0.0], np.float32)


def at_angle(degrees: float, norm: float = 3.0) -> list[float]:
    rad = math.radians(degrees)
    return [norm * math.cos(rad), norm * math.sin(rad), 0.0, 0.0]


def columns(rows: list[tuple]) -> tuple[list[str], np.ndarray, dict[str, list]]:
    ids = [r[0] for r in rows]
    vectors = np.array([at_angle(r[1]) for r in rows], np.float32)
    attributes = {
        "category": [r[2] for r in rows],
        "year": [r[3] for r in rows],
        "available": [r[4] for r in rows],
        "genres": [r[5] for r in rows],
    }
    return ids, vectors, attributes


def ids_of(hits: list) -> list[str]:
    return [h.item_id for h in hits]


@pytest.fixture(scope="module")
def lite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteServer]:
    with LiteServer(tmp_path_factory.mktemp("served") / "served.db", port=free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def lite_file_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusIndex]:
    index = MilvusIndex(str(tmp_path_factory.mktemp("embedded") / "embedded.db"))
    yield index
    index.close()


@pytest.fixture(scope="module")
def lite_server_index(lite_server: LiteServer) -> Iterator[MilvusIndex]:
    index = MilvusIndex(lite_server.uri)
    yield index
    index.close()


@pytest.fixture(params=["exact", "lite_file", "lite_server"])
def index(request: pytest.FixtureRequest) -> VectorIndex:
    if request.param == "exact":
        return open_index("memory://")
    return request.getfixturevalue(f"{request.param}_index")


@pytest.fixture
def version(index: VectorIndex) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    index.drop(name)


@pytest.fixture
def catalog(index: VectorIndex, version: str) -> str:
    index.ensure_collection(version, DIM, FIELDS)
    index.upsert(version, *columns(CATALOG))
    return version


def test_ensure_collection_creates_once_and_lists_the_version(index, version):
    assert index.ensure_collection(version, DIM, FIELDS) == f"items_{version}"
    assert index.ensure_collection(version, DIM, list(reversed(FIELDS))) == f"items_{version}"
    assert version in index.list_versions()
    info = index.describe(version)
    assert (info["collection"], info["dim"], info["count"], info["metric"]) == (
        f"items_{version}",
        DIM,
        0,
        "IP",
    )
    assert {f.name for f in info["fields"]} == {f.name for f in FIELDS}
    assert index.exact and info["exact"]


def test_search_ranks_by_cosine_best_first(index, catalog):
    hits = index.search(catalog, QUERY, limit=3)
    assert ids_of(hits) == ["a", "b", "c"]
    expected = [math.cos(math.radians(d)) for d in (0, 10, 20)]
    np.testing.assert_allclose([h.score for h in hits], expected, atol=1e-5)


def test_limit_beyond_the_catalog_returns_every_item(index, catalog):
    assert ids_of(index.search(catalog, QUERY, limit=1000)) == list("abcdefgh")


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"category": ["book"]}, ["a", "c", "f"]),
        ({"category": ["book", "music"]}, ["a", "c", "e", "f", "h"]),
        ({"year": [2001, 2004]}, ["a", "d", "g", "h"]),
        ({"available": [False]}, ["b", "f", "h"]),
        ({"genres": ["comedy", "jazz"]}, ["b", "d", "e", "f"]),
        ({"year": [2001], "genres": ["drama"]}, ["a"]),
        ({"category": ["film"], "available": [True], "genres": ["horror", "comedy"]}, ["d", "g"]),
        ({"category": ["nothing"]}, []),
        ({"category": []}, []),
    ],
)
def test_filter_keeps_items_whose_values_are_listed(index, catalog, filter, expected):
    assert ids_of(index.search(catalog, QUERY, limit=10, filter=filter)) == expected


def test_excluded_ids_are_never_returned(index, catalog):
    hits = index.search(catalog, QUERY, 3, filter={"category": ["book"]}, exclude_ids=["a", "zz"])
    assert ids_of(hits) == ["c", "f"]
    assert ids_of(index.search(catalog, QUERY, 2, exclude_ids=["a", "b", "c"])) == ["d", "e"]


def test_reupsert_replaces_items_without_duplicates(index, catalog):
    index.upsert(catalog, *columns([("a", 80, "music", 2001, True, ["drama"])]))
    index.upsert(catalog, *columns(CATALOG[1:]))
    assert index.count(catalog) == len(CATALOG)
    assert ids_of(index.search(catalog, QUERY, limit=10))[-1] == "a"
    assert ids_of(index.search(catalog, QUERY, 10, filter={"category": ["book"]})) == ["c", "f"]


def test_delete_removes_items_and_ignores_unknown_ids(index, catalog):
    index.delete(catalog, ["a", "c", "not-there"])
    assert index.count(catalog) == len(CATALOG) - 2
    assert ids_of(index.search(catalog, QUERY, limit=3)) == ["b", "d", "e"]
    index.delete(catalog, [])
    assert index.count(catalog) == len(CATALOG) - 2


HOSTILE_IDS = ['say "hi"', "back\\slash", "Müller", "it's", "red shirt", "sku/123", "100%", "%41"]


def test_values_and_ids_with_quotes_slashes_and_unicode_round_trip(index, catalog):
    """Ids and attribute values may hold quotes, backslashes, slashes, spaces, `%` and any
    Unicode: upserted, found, excluded and deleted as they are."""
    odd = [
        (HOSTILE_IDS[0], 5, 'the "best"', 1999, True, ['x"y']),
        (HOSTILE_IDS[1], 15, "c:\\dir", 1999, True, ["a\\b"]),
        (HOSTILE_IDS[2], 25, "ünï ☃ 名", 1999, True, ["名"]),
        *((i, 170 + n, "odd", 1999, True, ["odd"]) for n, i in enumerate(HOSTILE_IDS[3:])),
    ]
    index.upsert(catalog, *columns(odd))
    assert ids_of(index.search(catalog, QUERY, 3)) == ["a", HOSTILE_IDS[0], "b"]
    for _, _, category, _, _, genres in odd[:3]:
        hits = index.search(catalog, QUERY, 10, filter={"category": [category], "genres": genres})
        assert len(hits) == 1
    found = ids_of(index.search(catalog, QUERY, 20, filter={"category": ["odd"]}))
    assert sorted(found) == sorted(HOSTILE_IDS[3:])
    hits = index.search(catalog, QUERY, 3, exclude_ids=[*HOSTILE_IDS[:2], "a"])
    assert ids_of(hits) == ["b", "c", HOSTILE_IDS[2]]
    vectors = index.vectors(catalog, [HOSTILE_IDS[5], "a", "not-there"])
    assert sorted(vectors) == sorted([HOSTILE_IDS[5], "a"])
    assert np.allclose(vectors["a"], np.array(at_angle(0)) / 3.0, atol=1e-6)  # unit vectors
    index.delete(catalog, HOSTILE_IDS)
    assert index.count(catalog) == len(CATALOG)


@pytest.mark.parametrize("bad_id", ["", "x" * 257, "new\nline", "nul\x00", "\x7f", "\ud800"])
def test_ids_outside_the_id_rule_are_refused_everywhere(index, catalog, bad_id):
    _, _, attributes = columns([("x", 0, "book", 2001, True, ["drama"])])
    with pytest.raises(InvalidRequest, match="is not an id"):
        index.upsert(catalog, [bad_id], np.array([at_angle(0)], np.float32), attributes)
    with pytest.raises(InvalidRequest, match="is not an id"):
        index.search(catalog, QUERY, 3, exclude_ids=[bad_id])
    with pytest.raises(InvalidRequest, match="is not an id"):
        index.delete(catalog, [bad_id])


@pytest.mark.parametrize("limit", [0, -1, 1001, True, 2.0])
def test_limit_must_be_1_to_1000(index, catalog, limit):
    with pytest.raises(InvalidRequest, match="limit"):
        index.search(catalog, QUERY, limit)


def test_more_than_1000_exclusions_is_an_error(index, catalog):
    with pytest.raises(InvalidRequest, match="1000"):
        index.search(catalog, QUERY, 10, exclude_ids=[f"x{i}" for i in range(1001)])
    assert len(index.search(catalog, QUERY, 10, exclude_ids=[f"x{i}" for i in range(1000)])) == 8


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ({"colour": ["red"]}, "unknown filter fields"),
        ({"year": ["2001"]}, "not an int"),
        ({"available": [1]}, "not a bool"),
        ({"category": "book"}, "list of values"),
        ({"genres": [["drama"]]}, "not a string"),
        ({"category": ["line\nbreak"]}, "control"),
    ],
)
def test_bad_filters_are_rejected(index, catalog, filter, message):
    with pytest.raises(InvalidFilter, match=message):
        index.search(catalog, QUERY, 10, filter=filter)


def test_dimension_mismatch(index, catalog):
    with pytest.raises(CollectionMismatch, match="dim"):
        index.ensure_collection(catalog, DIM + 1, FIELDS)
    with pytest.raises(InvalidRequest, match="shape"):
        index.search(catalog, np.ones(DIM + 1), 10)
    with pytest.raises(InvalidRequest, match="shape"):
        index.upsert(catalog, ["x"], np.ones((1, DIM + 1)), {f.name: [None] for f in FIELDS})


def test_field_mismatch(index, catalog):
    with pytest.raises(CollectionMismatch, match="missing fields \\['colour'\\]"):
        index.ensure_collection(catalog, DIM, [*FIELDS, ScalarField("colour", "string")])
    with pytest.raises(CollectionMismatch, match="changed fields"):
        index.ensure_collection(catalog, DIM, [*FIELDS[:3], ScalarField("genres", "string")])


@pytest.mark.parametrize(
    ("ids", "vectors", "attributes", "message"),
    [
        (["it\ns"], [at_angle(0)], None, "is not an id"),
        (["x", "x"], [at_angle(0), at_angle(1)], None, "duplicate"),
        ([""], [at_angle(0)], None, "is not an id"),
        (["z" * 257], [at_angle(0)], None, "is not an id"),
        (["x"], [[0.0, 0.0, 0.0, 0.0]], None, "non-zero"),
        (["x"], [[np.nan, 1.0, 0.0, 0.0]], None, "finite"),
        (["x"], [at_angle(0)], {"year": None}, "missing \\['year'\\]"),
        (["x"], [at_angle(0)], {"year": [True]}, "not an int"),
        (["x"], [at_angle(0)], {"genres": ["drama"]}, "list of strings"),
        (["x"], [at_angle(0)], {"category": ["x" * 65]}, "64 bytes"),
    ],
)
def test_bad_upserts_are_rejected_and_write_nothing(
    index, catalog, ids, vectors, attributes, message
):
    _, _, good = columns([("x", 0, "book", 2001, True, ["drama"])] * len(ids))
    merged = {k: v for k, v in (good | (attributes or {})).items() if v is not None}
    with pytest.raises(InvalidRequest, match=message):
        index.upsert(catalog, ids, np.array(vectors, np.float32), merged)
    assert index.count(catalog) == len(CATALOG)


def test_unknown_version_is_not_found_and_drop_is_idempotent(index, version):
    for call in (
        lambda: index.search(version, QUERY, 1),
        lambda: index.count(version),
        lambda: index.upsert(version, *columns(CATALOG[:1])),
    ):
        with pytest.raises(CollectionNotFound):
            call()
    index.drop(version)
    assert version not in index.list_versions()


@pytest.mark.parametrize("bad", ["v-1", "v 1", "", "v1\n", "v.1"])
def test_version_must_be_letters_digits_underscore(index, bad):
    with pytest.raises(InvalidRequest, match="bundle version"):
        index.ensure_collection(bad, DIM, FIELDS)


def test_drop_removes_the_collection(index, catalog):
    index.drop(catalog)
    assert catalog not in index.list_versions()
    with pytest.raises(CollectionNotFound):
        index.count(catalog)


@pytest.mark.parametrize("choice", ["auto", "ivf_flat"])
def test_recall_at_100_against_exact_on_clustered_vectors(tmp_path, choice):
    vectors, centres = clustered_unit_vectors(20_000, 64, seed=3)
    ids = [f"item{i}" for i in range(len(vectors))]
    exact, lite = ExactIndex(), MilvusIndex(str(tmp_path / "recall.db"), index=choice)
    try:
        for index in (exact, lite):
            index.ensure_collection("r1", 64, [])
            index.upsert("r1", ids, vectors, {})
        recalls = [
            recall(lite.search("r1", q, 100), exact.search("r1", q, 100))
            for q in queries_near(centres, 30, seed=4)
        ]
        assert lite.describe("r1")["index_type"] == {"auto": "FLAT", "ivf_flat": "IVF_FLAT"}[choice]
    finally:
        lite.close()
    assert np.mean(recalls) >= 0.95, f"mean recall@100 {np.mean(recalls):.3f}"


def test_writes_of_another_process_are_searchable_through_the_lite_server(lite_server):
    version = f"mp{uuid.uuid4().hex[:8]}"
    reader = MilvusIndex(lite_server.uri)
    reader.ensure_collection(version, DIM, [])
    writer = textwrap.dedent(
        f"""
        import math
        import numpy as np
        from service.index.milvus import MilvusIndex
        index = MilvusIndex({lite_server.uri!r})
        index.ensure_collection({version!r}, {DIM}, [])
        angles = [5 * k for k in range(20)]
        vectors = np.array([[math.cos(math.radians(a)), math.sin(math.radians(a)), 0, 0]
                            for a in angles], np.float32)
        index.upsert({version!r}, [f"w{{a}}" for a in angles], vectors, {{}})
        index.close()
        """
    )
    try:
        subprocess.run([sys.executable, "-c", writer], cwd=REPO, check=True, timeout=60)
        assert reader.count(version) == 20
        assert ids_of(reader.search(version, QUERY, 3)) == ["w0", "w5", "w10"]
    finally:
        reader.drop(version)
        reader.close()
