"""Bulk import of user profiles into the state store (`recsys users import`, the demo, tests).

A profile is the schema's profile features of a user row, with missing (``None``) values left
out; a row whose id or values the API would refuse is skipped and reported, never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.bundle import Bundle
from service.state import StateStore
from service.validation import (
    InvalidInput,
    RequestRules,
    check_id,
    check_profile,
    id_from_file,
    profile_features,
)

BAD_ROW_EXAMPLES = 5


@dataclass
class ProfileImport:
    stored: int = 0
    skipped: int = 0
    examples: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the profile features read


def import_profiles(
    bundle: Bundle, rows: Iterable[Mapping[str, Any]], store: StateStore
) -> ProfileImport:
    """Store the profile of every valid row; raises `StoreError` if the store fails."""
    schema = bundle.encoder.schema
    rules = RequestRules.from_schema(schema)
    features = profile_features(schema)
    report = ProfileImport(names=[f.name for f in features])

    def encode(profile: Mapping[str, Any]) -> object:
        return bundle.encoder.encode_rows([profile], features)

    for number, row in enumerate(rows):
        profile = {name: row[name] for name in report.names if row.get(name) is not None}
        try:
            user_id = check_id(id_from_file(row.get(rules.user_key)), rules.user_key)
            check_profile(profile, rules, encode)
        except InvalidInput as exc:
            report.skipped += 1
            if len(report.examples) < BAD_ROW_EXAMPLES:
                report.examples.append(f"row {number}: {exc}")
            continue
        store.put_profile(user_id, profile)
        report.stored += 1
    return report
