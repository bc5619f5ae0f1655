"""The README's configuration table lists every setting, with its real default."""

from __future__ import annotations

import re
from pathlib import Path

from service.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_with_its_default():
    rows = dict(re.findall(r"^\| `(RECSYS_[A-Z_]+)` \| ([^|]+) \|", README, re.M))
    assert set(rows) == {f"RECSYS_{name.upper()}" for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default
        shown = rows[f"RECSYS_{name.upper()}"].strip().strip("`")
        if default in (None, "", []):
            continue
        assert shown == str(default), (name, shown, default)
