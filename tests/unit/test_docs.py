"""The README's configuration table lists every setting, with its real default."""

from __future__ import annotations

import re
import shlex
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


RUNNABLE = re.compile(r"^```bash runnable\n(.*?)^```", re.M | re.S)
SHELL_BLOCKS = re.compile(r"^```bash[^\n]*\n(.*?)^```", re.M | re.S)


def shell_commands(block: str) -> list[str]:
    """The block's commands: continuation lines joined, comments and blank lines dropped."""
    lines = block.replace("\\\n", " ").splitlines()
    return [line.split(" #")[0].strip() for line in lines if line.strip()]


def test_the_rollout_walkthrough_is_marked_runnable():
    commands = [c for block in RUNNABLE.findall(README) for c in shell_commands(block)]
    joined = "\n".join(commands)
    for step in ("recsys train", "recsys index --bundle", "recsys index status", "recsys rollout"):
        assert step in joined, f"no runnable `{step}` in the README"


def test_every_recsys_command_of_a_runnable_block_is_a_real_command():
    from tests.unit.test_deploy_files import check_recsys_args

    for block in RUNNABLE.findall(README):
        for command in shell_commands(block):
            command = command.removeprefix("NEW=$(").removesuffix(")")
            if command.startswith("recsys "):
                check_recsys_args(shlex.split(command)[1:])


def test_every_curl_with_a_body_says_it_is_json():
    for block in SHELL_BLOCKS.findall(README):
        for command in shell_commands(block):
            if command.startswith("curl") and " -d " in command:
                assert "-H 'content-type: application/json'" in command, command
