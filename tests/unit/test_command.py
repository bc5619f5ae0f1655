"""The `recsys` command: serving groups of its own, training commands from the entry-point
plugins, and a plugin that cannot load still telling the user how to install it."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from importlib.util import find_spec

import pytest
import typer
from typer.testing import CliRunner

from service.cli import PLUGIN_GROUP, add_plugin, build_app

runner = CliRunner()


def test_the_command_has_both_halves():
    names = set(typer.main.get_command(build_app()).commands)
    assert {"serve", "index", "bundle", "users", "milvus-lite"} <= names  # service/cli
    assert {"data", "train", "compare", "demo"} <= names  # training, through entry points


def test_a_plugin_that_cannot_load_says_how_to_install_it():
    app = build_app(plugins=[])
    add_plugin(app, EntryPoint("train", "training_is_not_here.cli:train", PLUGIN_GROUP))
    result = runner.invoke(app, ["train", "--dataset", "posts"])
    assert result.exit_code == 2
    assert "recsys train" in result.output and "pip install 'recsys[train]'" in result.output


def test_serve_refuses_several_workers_on_a_lite_file_even_as_a_file_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("BUNDLE", "MILVUS_URI", "WORKERS"):  # serve passes options on as RECSYS_*
        monkeypatch.setenv(f"RECSYS_{name}", "")  # so that they are unset again afterwards
    for uri in (str(tmp_path / "m.db"), f"file://{tmp_path}/m.db"):
        args = ["serve", "--bundle", str(tmp_path), "--milvus-uri", uri, "--workers", "2"]
        result = runner.invoke(build_app(plugins=[]), args)
        assert result.exit_code == 2, (uri, result.output)
        assert "milvus-lite serve" in result.output


@pytest.mark.skipif(
    find_spec("tensorflow") is not None,
    reason="checks the serving-only install (.ci/run runs tests/unit there first)",
)
def test_train_without_the_train_extra_says_how_to_install_it():
    result = runner.invoke(build_app(), ["train", "--dataset", "posts"])
    assert result.exit_code == 2
    assert "needs the 'train' extra: pip install" in result.output
