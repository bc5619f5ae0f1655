"""What the service accepts, in one place: the id rule, item attribute values, item rows,
profiles and the feature names a request may use.

The API (a 422 naming the field), the vector index and the batch indexing job all apply these
rules, so an item the API accepts is one the index takes, and an id the batch job indexed can
be addressed through the API. The rules a model adds (which names, which attributes) come from
its feature schema as a `RequestRules`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from service.features import EncodingError, Feature, FeatureSchema, SparseFeat, VarLenSparseFeat
from service.features.vocab import token

MAX_ID_LENGTH = 256
ID_PATTERN = rf"^[^\x00-\x1f\x7f-\x9f]{{1,{MAX_ID_LENGTH}}}$"
_ID = re.compile(ID_PATTERN)
ID_RULE = f"1 to {MAX_ID_LENGTH} characters, none of them a control character"
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)
FEATURE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
MAX_VALUE_BYTES = 1024  # one string feature or filter value, in UTF-8
MAX_LIST_VALUES = 1000  # values of one multi-value feature
MAX_PATH_COMPONENT_BYTES = 255  # NAME_MAX on Linux
MAX_EVENT_TS = 1e11  # Unix seconds (year 5138): a larger ts is a unit mistake (milliseconds)

FieldKind = Literal["string", "int", "bool", "string_array"]
FilterValue = str | int | bool
Encode = Callable[[Mapping[str, Any]], object]


class InvalidInput(ValueError):
    """Input the service refuses; ``field`` names it the way the API reports it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def check_id(value: object, field: str = "id") -> str:
    """A user or item id: 1..256 characters of valid Unicode without control characters, so
    unicode, spaces, slashes and quotes are all fine (every adapter stores ids safely: the
    Milvus one escapes them, see `service.index.milvus_keys`)."""
    if value is None:
        raise InvalidInput(f"{field}: required, an id ({ID_RULE})", field)
    if not isinstance(value, str) or not _ID.fullmatch(value) or not _is_unicode(value):
        raise InvalidInput(f"{field} is not an id ({ID_RULE}, valid Unicode)", field)
    return value


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def check_raw_value(value: Any) -> Any:
    """A raw feature value as it enters the service, before any model reads it or the store
    keeps it: null, one `check_raw_scalar`, or a list of at most 1000 of them."""
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST_VALUES:
            raise ValueError(f"at most {MAX_LIST_VALUES} values")
        for v in value:
            check_raw_scalar(v)
    elif value is not None:
        check_raw_scalar(value)
    return value


def check_raw_scalar(value: Any) -> Any:
    """One raw feature or filter value: a bool, an integer within int64, a finite number
    within float32, or a string of valid Unicode (no lone surrogate) of at most 1024 UTF-8
    bytes. Raises ``ValueError`` naming the rule (never echoing the value, which may not even
    be printable)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("integers must fit in 64 bits (-2**63 .. 2**63-1)")
    elif isinstance(value, float):
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise ValueError("numbers must be finite and within float32 range (3.4e38)")
    elif isinstance(value, str):
        try:
            size = len(value.encode())
        except UnicodeEncodeError:
            raise ValueError("strings must be valid Unicode (a lone surrogate is not)") from None
        if size > MAX_VALUE_BYTES:
            raise ValueError(f"strings of at most {MAX_VALUE_BYTES} UTF-8 bytes")
    else:
        raise ValueError("a string, number or bool (or, for a feature, a list of them or null)")
    return value


def raw_value_schema(scalar_only: bool = False) -> dict[str, Any]:
    """The JSON schema of what `check_raw_value` (or `check_raw_scalar`) accepts, for OpenAPI."""
    scalar = [
        {"type": "string", "maxLength": MAX_VALUE_BYTES},
        {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
        {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX},
        {"type": "boolean"},
    ]
    if scalar_only:
        return {"anyOf": scalar}
    listed = {"type": "array", "items": {"anyOf": scalar}, "maxItems": MAX_LIST_VALUES}
    return {"anyOf": [*scalar, listed, {"type": "null"}]}


_BUNDLE_PART = r"[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,254}"
BUNDLE_PATH_PATTERN = rf"^/?(?:{_BUNDLE_PART}/)*{_BUNDLE_PART}/?$"
BUNDLE_PATH_RULE = (
    "folder names of at most 255 letters, digits, '_', '-' and '.' (not first), joined by '/'"
)


class OutsideBundlesRoot(InvalidInput):
    """A well-formed bundle path that names no folder inside the bundles root (or reloads are
    off): refused for where it points, a 403."""


def check_bundle_text(text: str) -> str:
    """A bundle path as a reload may write it (`BUNDLE_PATH_PATTERN`); ``ValueError`` names
    the rule it breaks."""
    if CONTROL_CHARS.search(text):
        raise ValueError("a path without control characters (NUL, newline)")
    parts = text.strip("/").split("/")
    if max((len(p.encode("utf-8", "surrogatepass")) for p in parts), default=0) > 255:
        raise ValueError("path components of at most 255 bytes")
    if any(p in (".", "..") for p in parts):
        raise ValueError("a path without '.' or '..' components")
    if not re.fullmatch(BUNDLE_PATH_PATTERN, text):
        raise ValueError(BUNDLE_PATH_RULE)
    return text


def check_bundle_path(text: str, root: Path | None, field: str = "bundle") -> Path:
    """The bundle folder an admin reload names, resolved (symlinks followed): a path of
    `check_bundle_text`, inside ``root`` and not ``root`` itself. A relative path is read from
    the working directory, else from ``root`` (so a bare version name works). Errors never
    show the resolved path."""
    if root is None:
        raise OutsideBundlesRoot(f"{field}: reloads are off (no RECSYS_BUNDLES_ROOT)", field)
    try:
        check_bundle_text(text)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}", field) from None
    candidates = [Path(text)] if Path(text).is_absolute() else [Path(text), root / text]
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved != root and resolved.is_relative_to(root):
            return resolved
    raise OutsideBundlesRoot(
        f"{field}: not a folder inside the bundles root (RECSYS_BUNDLES_ROOT)", field
    )


def id_from_file(value: object) -> object:
    """An id as read from a data file: numbers (MovieLens ids, a float column) become their
    canonical string, as feature values do (``token``)."""
    if value is None or isinstance(value, str | bool | np.bool_):
        return value
    return token(value)


@dataclass(frozen=True)
class ScalarField:
    """A filterable item attribute stored beside the vector, and the values it takes.

    ``max_length`` bounds a string (or each string of an array) in UTF-8 bytes;
    ``max_capacity`` bounds the number of strings in a ``string_array``.
    """

    name: str
    kind: FieldKind
    max_length: int = 256
    max_capacity: int = 64


def scalar_fields(schema: FeatureSchema) -> list[ScalarField]:
    """The schema's filterable item features as index attributes (strings or string lists)."""
    return [
        ScalarField(f.name, "string" if isinstance(f, SparseFeat) else "string_array")
        for f in schema.filterable()
    ]


def attribute_value(field: ScalarField, value: Any) -> Any:
    """``value`` as the index stores it; raises ``InvalidInput`` outside the field's bounds."""
    try:
        if field.kind == "string_array":
            if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
                raise TypeError("a list of strings")
            items = [_string(field, v) for v in value]
            if len(items) > field.max_capacity:
                raise TypeError(f"at most {field.max_capacity} strings")
            return items
        return _scalar(field, value)
    except TypeError as e:
        raise InvalidInput(f"{field.name}: {_shown(value)} is not {e}", field.name) from None


def filter_value(field: ScalarField, value: Any) -> FilterValue:
    """One accepted value of a filter on ``field`` (an element, for a ``string_array``)."""
    try:
        if field.kind == "string_array":
            return _string(field, value)
        return _scalar(field, value)
    except TypeError as e:
        raise InvalidInput(
            f"filter {field.name!r}: {_shown(value)} is not {e}", field.name
        ) from None


def _shown(value: Any, limit: int = 60) -> str:
    """A value as an error message shows it: short, and ASCII (so even a lone surrogate or a
    control character can be written back in a JSON answer or a log line)."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit] + "..."


def attribute_of(field: ScalarField, raw: Any) -> Any:
    """The attribute value of a raw item feature: its token, or the tokens of a list."""
    if field.kind == "string":
        return "" if raw is None else token(raw)
    if field.kind == "string_array":
        values = [] if raw is None else [raw] if isinstance(raw, str) else list(raw)
        return [token(v) for v in values]
    return raw


def attribute_columns(
    fields: Sequence[ScalarField], rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[Any]]:
    """One column of attribute values per field for raw item rows."""
    return {f.name: [attribute_of(f, row.get(f.name)) for row in rows] for f in fields}


def _scalar(field: ScalarField, value: Any) -> FilterValue:
    if field.kind == "string":
        return _string(field, value)
    if field.kind == "bool":
        if not isinstance(value, bool | np.bool_):
            raise TypeError("a bool")
        return bool(value)
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError("an int")
    if not INT64_MIN <= int(value) <= INT64_MAX:
        raise TypeError("an int64")
    return int(value)


def _string(field: ScalarField, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string")
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise TypeError("a string of valid Unicode (a lone surrogate is not)") from None
    if size > field.max_length:
        raise TypeError(f"a string of at most {field.max_length} bytes")
    if CONTROL_CHARS.search(value):
        raise TypeError("a string without control characters")
    return value


def is_missing(value: Any) -> bool:
    """No value: None, NaN (an empty cell of a data file), an empty string or list."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return True
    if isinstance(value, str | bytes | list | tuple | np.ndarray):
        return len(value) == 0
    return False


@dataclass(frozen=True)
class RequestRules:
    """The names a model accepts in requests, profiles and item rows, and the attributes its
    collection stores (what filters may name)."""

    user_key: str
    item_key: str
    history: str | None  # the user feature filled from recent events
    context: frozenset[str]
    profile: frozenset[str]
    item_fields: frozenset[str]
    attributes: tuple[ScalarField, ...]
    required_item: tuple[str, ...] = ()  # item features a row must carry (besides the key)

    @property
    def filterable(self) -> frozenset[str]:
        return frozenset(f.name for f in self.attributes)

    @classmethod
    def from_schema(cls, schema: FeatureSchema) -> RequestRules:
        history = schema.history
        return cls(
            user_key=schema.user_key,
            item_key=schema.item_key,
            history=history.name if history else None,
            context=frozenset(f.name for f in schema.on("context")),
            profile=frozenset(f.name for f in profile_features(schema)),
            item_fields=frozenset(f.name for f in schema.on("item")),
            attributes=tuple(scalar_fields(schema)),
            required_item=tuple(f.name for f in schema.required_item_features()),
        )


def profile_features(schema: FeatureSchema) -> list[Feature]:
    """User features a profile (or a request) may set: not the id, not the event history."""
    return [
        f
        for f in schema.on("user")
        if f.name != schema.user_key and not (isinstance(f, VarLenSparseFeat) and f.from_events)
    ]


def check_request_names(
    rules: RequestRules,
    context: Iterable[str],
    user_features: Iterable[str],
    filter: Iterable[str],
) -> None:
    """Unknown feature or filter names are mistakes worth a 422, not silent unknown values."""
    parts = {
        "filter": (filter, rules.filterable),
        "context": (context, rules.context),
        "user_features": (user_features, rules.profile),
    }
    for part, (names, allowed) in parts.items():
        for name in names:
            if name not in allowed:
                raise InvalidInput(
                    f"{part}.{name}: unknown; this model accepts {sorted(allowed)}",
                    f"{part}.{name}",
                )


def check_item_row(
    row: Mapping[str, Any], rules: RequestRules, encode: Encode | None = None, where: str = ""
) -> str:
    """The row's id, once the row is one the index will take: a valid id, attribute values
    within the index's bounds and, with ``encode``, values the models can encode. ``where``
    prefixes the field names in errors (``items[3]``)."""
    prefix = f"{where}." if where else ""
    item_id = check_id(row.get(rules.item_key), prefix + rules.item_key)
    for name in rules.required_item:
        if is_missing(row.get(name)):
            raise InvalidInput(
                f"{prefix}{name}: required (the schema marks it required for every item)",
                prefix + name,
            )
    for field in rules.attributes:
        try:
            attribute_value(field, attribute_of(field, row.get(field.name)))
        except InvalidInput as exc:
            raise InvalidInput(f"{prefix}{exc}", prefix + field.name) from None
    if encode is not None:
        _encodes(encode, row, prefix)
    return item_id


def check_item_rows(
    items: Sequence[tuple[str, Mapping[str, Any]]],
    rules: RequestRules,
    encode: Encode | None = None,
) -> list[dict[str, Any]]:
    """The rows to store for the ``(item_id, features)`` pairs of a request, once each is one
    the index and models will take (``check_item_row``). A request names item features only,
    and the id only once: the row keeps it under the data set's item key."""
    rows = []
    for i, (item_id, features) in enumerate(items):
        where = f"items[{i}].features"
        if rules.item_key in features:
            raise InvalidInput(
                f"{where}.{rules.item_key}: the id goes in items[{i}].item_id",
                f"{where}.{rules.item_key}",
            )
        unknown = sorted(set(features) - rules.item_fields)
        if unknown:
            raise InvalidInput(
                f"{where}.{unknown[0]}: not an item feature; known: {sorted(rules.item_fields)}",
                f"{where}.{unknown[0]}",
            )
        check_id(item_id, f"items[{i}].item_id")
        row = {**features, rules.item_key: item_id}
        check_item_row(row, rules, encode, where)
        rows.append(row)
    return rows


def check_profile(
    features: Mapping[str, Any], rules: RequestRules, encode: Encode | None = None
) -> None:
    """Profile features: names the model reads as profile and, with ``encode``, values it can
    encode (a stored profile is read by every later recommendation for that user)."""
    for name in features:
        if name not in rules.profile:
            raise InvalidInput(
                f"features.{name}: not a user profile feature; known: {sorted(rules.profile)}",
                f"features.{name}",
            )
    if encode is not None:
        _encodes(encode, features, "features.")


def _encodes(encode: Encode, row: Mapping[str, Any], prefix: str) -> None:
    try:
        encode(row)
    except EncodingError as exc:
        raise InvalidInput(f"{prefix}{exc}", prefix + exc.feature) from None
