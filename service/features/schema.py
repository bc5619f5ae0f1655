"""The feature schema: declarative feature records shared by training and serving.

Modelled on DeepCTR's feature columns. A schema is config (TOML or JSON), so a data set
is a config, not code. Every model input is named after its feature; a weighted
variable-length feature adds a second input, ``<name>_weight``. A crossed feature adds no
input: the model computes it from its parts' ids.

What an item row without a feature gets is the schema's choice, per item feature: with
``required = true`` the row is refused (a 422 at ``PUT /v1/items`` naming the feature, a bad
row for ``recsys index``); otherwise it is encoded as unknown — the OOV id for a sparse
feature, an empty list for a varlen one, the training mean for a dense one (zeros when
``normalize = false``). The item key is always required.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Side = Literal["user", "item", "context"]
SIDES: tuple[Side, ...] = ("user", "item", "context")

PAD_ID = 0
OOV_ID = 1


@dataclass(frozen=True)
class SparseFeat:
    """A categorical id. ``embedding_name`` shares one table (and vocabulary) between features."""

    name: str
    side: Side
    embedding_name: str | None = None
    min_count: int = 1
    filterable: bool = False
    required: bool = False  # item features only: an item row must carry it

    kind = "sparse"

    @property
    def table(self) -> str:
        return self.embedding_name or self.name


@dataclass(frozen=True)
class VarLenSparseFeat:
    """A multi-value categorical feature, padded with id 0 to ``maxlen`` and pooled in the model.

    ``weighted`` values are "token:weight" strings, (token, weight) pairs or a mapping.
    ``from_events`` marks the user's recent item history: training fills it from earlier
    training interactions, the service from the user's recorded events. ``keep`` says which
    end of a too-long list survives: "last" (most recent) or "first".
    """

    name: str
    side: Side
    maxlen: int
    combiner: Literal["mean", "sum"] = "mean"
    weighted: bool = False
    embedding_name: str | None = None
    from_events: bool = False
    keep: Literal["first", "last"] = "last"
    min_count: int = 1
    filterable: bool = False
    required: bool = False  # item features only: an item row must carry a non-empty list

    kind = "varlen"

    @property
    def table(self) -> str:
        return self.embedding_name or self.name

    @property
    def weight_name(self) -> str:
        return f"{self.name}_weight"


@dataclass(frozen=True)
class DenseFeat:
    """A number or a pre-trained vector of ``dim`` floats, standardized when ``normalize``."""

    name: str
    side: Side
    dim: int = 1
    normalize: bool = True
    required: bool = False  # item features only: an item row must carry the values

    kind = "dense"


CROSS_SIDE = "cross"


@dataclass(frozen=True)
class CrossFeat:
    """The cross product of two or more categorical features, for the wide part of a ranker.

    It has no model input and no vocabulary: the model computes one id per combination of
    its parts' ids in the graph (mixed radix over the parts' vocabulary sizes, modulo
    ``buckets`` when that is > 0), so the service encodes nothing new and a user x item
    cross is exactly the same online, where user and item rows are encoded apart. A
    multi-value part gives one id per value (a ``[batch, w1 * w2]`` list); pairs with
    padding are dropped. Its side is ``"cross"``: neither tower reads it.
    """

    name: str
    features: tuple[str, ...]
    buckets: int = 0

    kind = "cross"
    side = CROSS_SIDE

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))


Feature = SparseFeat | VarLenSparseFeat | DenseFeat | CrossFeat
_KINDS: dict[str, type[Feature]] = {
    "sparse": SparseFeat,
    "varlen": VarLenSparseFeat,
    "dense": DenseFeat,
    "cross": CrossFeat,
}


class SchemaError(ValueError):
    """The schema config is inconsistent."""


@dataclass(frozen=True)
class FeatureSchema:
    """All features of a data set, with the keys that identify a user and an item."""

    name: str
    user_key: str
    item_key: str
    features: tuple[Feature, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise SchemaError(f"schema {self.name!r}: duplicate feature names {sorted(dupes)}")
        by_name = dict(zip(names, self.features, strict=True))
        for key, side in ((self.user_key, "user"), (self.item_key, "item")):
            feat = by_name.get(key)
            if not isinstance(feat, SparseFeat) or feat.side != side:
                raise SchemaError(
                    f"schema {self.name!r}: key {key!r} must be a sparse feature on side {side!r}"
                )
        for feat in self.features:
            if isinstance(feat, CrossFeat):
                _check_cross(feat, by_name)
                continue
            if feat.side not in SIDES:
                raise SchemaError(f"feature {feat.name!r}: side must be one of {SIDES}")
            if isinstance(feat, VarLenSparseFeat) and feat.maxlen < 1:
                raise SchemaError(f"feature {feat.name!r}: maxlen must be >= 1")
            if isinstance(feat, DenseFeat) and feat.dim < 1:
                raise SchemaError(f"feature {feat.name!r}: dim must be >= 1")
            if feat.required and feat.side != "item":
                raise SchemaError(
                    f"feature {feat.name!r}: `required` applies to item features only"
                )

    def __getitem__(self, name: str) -> Feature:
        for feat in self.features:
            if feat.name == name:
                return feat
        raise KeyError(f"schema {self.name!r} has no feature {name!r}")

    def on(self, *sides: Side) -> list[Feature]:
        """Features of the given sides, in schema order."""
        return [f for f in self.features if f.side in sides]

    def categorical(self) -> list[SparseFeat | VarLenSparseFeat]:
        """Features with ids and a vocabulary (crosses have neither)."""
        return [f for f in self.features if isinstance(f, SparseFeat | VarLenSparseFeat)]

    def crosses(self) -> list[CrossFeat]:
        return [f for f in self.features if isinstance(f, CrossFeat)]

    def tables(self) -> dict[str, list[SparseFeat | VarLenSparseFeat]]:
        """Embedding table name -> the features that read it."""
        out: dict[str, list[SparseFeat | VarLenSparseFeat]] = {}
        for feat in self.categorical():
            out.setdefault(feat.table, []).append(feat)
        return out

    @property
    def history(self) -> VarLenSparseFeat | None:
        """The user feature filled from recent item events, if the schema has one."""
        return next(
            (f for f in self.features if isinstance(f, VarLenSparseFeat) and f.from_events), None
        )

    def required_item_features(self) -> list[Feature]:
        """Item features an item row must carry (besides the item key, always required)."""
        return [f for f in self.on("item") if getattr(f, "required", False)]

    def filterable(self) -> list[SparseFeat | VarLenSparseFeat]:
        """Item attributes that retrieval can filter on (stored beside the item vectors)."""
        return [f for f in self.on("item") if not isinstance(f, DenseFeat) and f.filterable]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "user_key": self.user_key,
            "item_key": self.item_key,
            "features": [_feature_dict(f) for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSchema:
        features = []
        for raw in data["features"]:
            spec = dict(raw)
            kind = spec.pop("kind", None)
            if kind not in _KINDS:
                raise SchemaError(
                    f"feature {spec.get('name')!r}: kind must be one of {list(_KINDS)}"
                )
            try:
                features.append(_KINDS[kind](**spec))
            except TypeError as exc:
                raise SchemaError(f"feature {spec.get('name')!r}: {exc}") from None
        return cls(data["name"], data["user_key"], data["item_key"], tuple(features))

    @classmethod
    def from_toml(cls, path: Path) -> FeatureSchema:
        with open(path, "rb") as fh:
            return cls.from_dict(tomllib.load(fh)["schema"])

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON form: equal schemas have equal fingerprints."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _feature_dict(feat: Feature) -> dict[str, Any]:
    """A feature's config; ``required`` only when set, so the fingerprints of schemas written
    before it existed stay the same (their bundles keep loading)."""
    spec = {"kind": feat.kind, **asdict(feat)}
    if not spec.get("required", True):
        del spec["required"]
    return spec


def _check_cross(cross: CrossFeat, by_name: dict[str, Feature]) -> None:
    if len(cross.features) < 2 or len(set(cross.features)) != len(cross.features):
        raise SchemaError(f"cross {cross.name!r}: needs two or more distinct features")
    for name in cross.features:
        if not isinstance(by_name.get(name), SparseFeat | VarLenSparseFeat):
            raise SchemaError(
                f"cross {cross.name!r}: {name!r} is not a sparse or varlen feature of the schema"
            )
    if cross.buckets < 0:
        raise SchemaError(f"cross {cross.name!r}: buckets must be >= 0 (0 = exact ids)")
