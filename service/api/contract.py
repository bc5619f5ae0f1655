"""The served model's request contract: what `context`, `user_features`, a profile's
`features`, an item's `features` and a `filter` may hold, built from its feature schema.

One set of pydantic types per schema both validates those parts of a request (a 422 naming
the field) and gives the JSON schemas that /openapi.json shows (`service.api.openapi`), so the
document says exactly what the server accepts. The bounds are stricter than what the encoder
and the index take (`service.validation`), never looser: characters, not UTF-8 bytes (a
string of at most ``bytes // 4`` characters always fits), numbers within ±10**15 (exact as an
integer, finite after standardization), weights written as plain decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Required

from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from service.features import DenseFeat, FeatureSchema, SparseFeat, VarLenSparseFeat
from service.online.ports import ServableModel
from service.validation import (
    MAX_LIST_VALUES,
    MAX_VALUE_BYTES,
    InvalidInput,
    RequestRules,
    ScalarField,
    profile_features,
)

MAX_NUMBER = 10**15
MAX_CHARS = MAX_VALUE_BYTES // 4
NO_CONTROL_CHARS = r"^[^\x00-\x1f\x7f-\x9f]*$"
# A weighted value: a bare token (weight 1) or "token:weight", the weight a plain decimal.
WEIGHTED = r"^(?:[^:]*|[\s\S]*:[+-]?[0-9]{1,15}(?:\.[0-9]{1,15})?)$"
PATTERN_RULES = {
    WEIGHTED: 'a weighted value is "token" or "token:weight", the weight a plain decimal',
    NO_CONTROL_CHARS: "a string without control characters",
}

Number = Annotated[float, Field(ge=-MAX_NUMBER, le=MAX_NUMBER, allow_inf_nan=False)]
Integer = Annotated[int, Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]
Token = Annotated[str, StringConstraints(max_length=MAX_CHARS)]
Scalar = Token | Integer | Number | bool


def _attribute_string(field: ScalarField, required: bool = False) -> Any:
    return Annotated[
        str,
        StringConstraints(
            min_length=1 if required else 0,
            max_length=field.max_length // 4,
            pattern=NO_CONTROL_CHARS,
        ),
    ]


def _sparse(feat: SparseFeat, attribute: ScalarField | None) -> Any:
    if attribute is not None:
        text = _attribute_string(attribute, feat.required)
    else:
        text = Annotated[
            str, StringConstraints(min_length=int(feat.required), max_length=MAX_CHARS)
        ]
    token = text | Integer | Number | bool
    return token if feat.required else token | None


def _varlen(feat: VarLenSparseFeat, attribute: ScalarField | None) -> Any:
    if attribute is not None:
        value, most = _attribute_string(attribute) | Integer | Number | bool, attribute.max_capacity
    elif feat.weighted:
        value = Annotated[str, StringConstraints(max_length=MAX_CHARS, pattern=WEIGHTED)]
        value, most = value | Integer | Number | bool, MAX_LIST_VALUES
    else:
        value, most = Scalar, MAX_LIST_VALUES
    values = Annotated[list[value], Field(min_length=int(feat.required), max_length=most)]
    return values if feat.required else values | None


def _dense(feat: DenseFeat) -> Any:
    vector = Annotated[list[Number], Field(min_length=feat.dim, max_length=feat.dim)]
    value = Number | vector if feat.dim == 1 else vector
    return value if feat.required else value | None


def _value_type(feat: Any, attribute: ScalarField | None = None) -> Any:
    if isinstance(feat, SparseFeat):
        return _sparse(feat, attribute)
    if isinstance(feat, VarLenSparseFeat):
        return _varlen(feat, attribute)
    return _dense(feat)


def _object(name: str, fields: Mapping[str, Any], required: tuple[str, ...] = ()) -> TypeAdapter:
    """A JSON object of exactly these optional (or ``required``) fields, strictly typed."""
    annotated = {k: Required[t] if k in required else t for k, t in fields.items()}
    typed: Any = TypedDict(name, annotated, total=False)  # type: ignore[operator]
    typed.__pydantic_config__ = ConfigDict(extra="forbid", strict=True, title=name)
    return TypeAdapter(typed)


class ModelContract:
    """The contract of one feature schema; `contract_of` caches one per schema."""

    def __init__(self, schema: FeatureSchema) -> None:
        rules = RequestRules.from_schema(schema)
        self.schema = schema
        attributes = {f.name: f for f in rules.attributes}
        items = [f for f in schema.on("item") if f.name != schema.item_key]
        profile = profile_features(schema)
        self.parts: dict[str, TypeAdapter] = {
            "Context": _object("Context", {f.name: _value_type(f) for f in schema.on("context")}),
            "UserFeatures": _object("UserFeatures", {f.name: _value_type(f) for f in profile}),
            "ItemFeatures": _object(
                "ItemFeatures",
                {f.name: _value_type(f, attributes.get(f.name)) for f in items},
                required=tuple(n for n in rules.required_item if n != schema.item_key),
            ),
            "Filter": _object(
                "Filter",
                {
                    name: Annotated[
                        list[_attribute_string(field)], Field(max_length=MAX_LIST_VALUES)
                    ]
                    for name, field in attributes.items()
                },
            ),
        }

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        """Component name -> JSON schema, for /openapi.json."""
        return {name: adapter.json_schema() for name, adapter in self.parts.items()}

    def accepted(self, part: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` without the fields the contract refuses (for examples)."""
        try:
            self.parts[part].validate_python(values)
            return dict(values)
        except ValidationError as exc:
            refused = {e["loc"][0] for e in exc.errors() if e["loc"]}
        return {k: v for k, v in values.items() if k not in refused}

    def check_request(
        self,
        context: Mapping[str, Any],
        user_features: Mapping[str, Any],
        filter: Mapping[str, Any],
    ) -> None:
        """The feature maps of a recommendation request (empty ones cost nothing)."""
        for part, values, field in (
            ("Context", context, "context"),
            ("UserFeatures", user_features, "user_features"),
            ("Filter", filter, "filter"),
        ):
            if values:
                self.check(part, values, field)

    def check(self, part: str, value: Mapping[str, Any], field: str) -> None:
        """Raises `InvalidInput` naming the first field of ``value`` outside the contract."""
        try:
            self.parts[part].validate_python(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            path = ".".join([field, *(str(p) for p in error["loc"][:1])])
            if error["type"] == "extra_forbidden":
                known = sorted(self.parts[part].json_schema().get("properties", {}))
                raise InvalidInput(f"{path}: unknown; this model accepts {known}", path) from None
            pattern = (error.get("ctx") or {}).get("pattern")
            error["msg"] = PATTERN_RULES.get(pattern, error["msg"])
            raise InvalidInput(f"{path}: {error['msg']}", path) from None


_CONTRACTS: dict[str, ModelContract] = {}


def contract_of(model: ServableModel) -> ModelContract:
    """The contract of the model's schema, built once per model version."""
    contract = _CONTRACTS.get(model.version)
    if contract is None or contract.schema is not model.schema:
        if len(_CONTRACTS) >= 8:
            _CONTRACTS.pop(next(iter(_CONTRACTS)))
        contract = _CONTRACTS[model.version] = ModelContract(model.schema)
    return contract
