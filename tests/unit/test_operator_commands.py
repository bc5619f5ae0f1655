"""The commands an operator meets first: `make demo` and its ports, `recsys rollout`'s request,
the rankers `recsys train --help` offers, and quiet native logs. No TensorFlow, no model."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from service.cli import build_app
from service.cli.rollout import reload_request
from training.models.ranker_config import RANKER_NAMES

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.fixture
def clean_env(monkeypatch, tmp_path) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("RECSYS_")]:
        monkeypatch.delenv(name)
    return tmp_path


def test_demo_on_a_busy_port_fails_before_anything_starts(busy_port, clean_env):
    data = clean_env / "data" / "posts"
    result = runner.invoke(build_app(), ["demo", "--port", str(busy_port), "--data-dir", str(data)])
    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{busy_port}" in result.output and "PORT=" in result.output
    assert not data.exists()  # no step ran: no data generated, no training started


def test_demo_takes_its_port_from_recsys_port(busy_port, clean_env, monkeypatch):
    monkeypatch.setenv("RECSYS_PORT", str(busy_port))
    result = runner.invoke(build_app(), ["demo", "--data-dir", str(clean_env / "d")])
    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{busy_port}" in result.output


def test_demo_refuses_a_busy_milvus_lite_port(busy_port, clean_env):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    args = ["demo", "--port", str(free), "--milvus-port", str(busy_port)]
    result = runner.invoke(build_app(), args)
    assert result.exit_code == 2, result.output
    assert "Milvus Lite port" in result.output and str(busy_port) in result.output


def test_serve_on_a_busy_port_fails_before_loading_the_bundle(busy_port, clean_env):
    args = ["serve", "--bundle", str(clean_env), "--milvus-uri", "memory://"]
    result = runner.invoke(build_app(plugins=[]), [*args, "--port", str(busy_port)])
    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{busy_port}" in result.output.replace("\n", "")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_passes_port_and_installs_only_what_the_demo_needs():
    def dry_run(*args: str) -> str:
        outer = ("PORT", "MILVUS_PORT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")  # `make test` runs us
        env = {k: v for k, v in os.environ.items() if k not in outer}
        done = subprocess.run(
            ["make", "--no-print-directory", "-n", "-W", "pyproject.toml", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    with_port = dry_run("demo", "PORT=8123", "MILVUS_PORT=19533")
    assert "recsys demo --port 8123 --milvus-port 19533" in with_port
    assert "pip install -q -e '.[train]'" in with_port
    assert "dev" not in with_port and "test-server" not in with_port
    plain = [line for line in dry_run("demo").splitlines() if "recsys demo" in line]
    assert [line.strip() for line in plain] == [".venv/bin/recsys demo"]  # RECSYS_PORT decides
    assert "'.[train,dev,test-server]'" in dry_run("test")  # the tests add their extras


def test_rollout_sends_json_with_the_admin_key():
    request = reload_request("http://127.0.0.1:8000/", "bundles/v2", "admin-key")
    assert request.full_url == "http://127.0.0.1:8000/v1/admin/reload"
    assert request.get_method() == "POST"
    assert request.get_header("Content-type") == "application/json"
    assert request.get_header("X-api-key") == "admin-key"
    assert json.loads(request.data) == {"bundle": "bundles/v2", "force": False}
    forced = reload_request("http://h:1", "b", None, force=True)
    assert json.loads(forced.data)["force"] is True
    assert reload_request("http://h:1", "b", None).get_header("X-api-key") is None


def test_rollout_without_an_api_says_so(clean_env):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    result = runner.invoke(
        build_app(plugins=[]), ["rollout", "b", "--url", f"http://127.0.0.1:{port}"]
    )
    assert result.exit_code == 1
    assert "cannot reach the API" in result.output


def test_train_help_lists_every_ranker():
    command = typer.main.get_command(build_app())
    train = command.get_command(command.make_context("recsys", [], resilient_parsing=True), "train")
    ranker = next(p for p in train.params if p.name == "ranker")
    for name in RANKER_NAMES:
        assert name in ranker.help
    assert len(RANKER_NAMES) == 6


def test_train_refuses_an_unknown_ranker_before_loading_anything():
    result = runner.invoke(build_app(), ["train", "--ranker", "deepfn"])
    assert result.exit_code == 2
    assert "--ranker must be one of lr, fm, deepfm, widedeep, afm, nfm" in result.output


def test_importing_service_sets_quiet_defaults_that_the_environment_overrides():
    code = (
        "import os, service; "
        "print(os.environ['GRPC_VERBOSITY'], os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("GRPC_VERBOSITY", "TF_CPP_MIN_LOG_LEVEL")
    }
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.split() == ["NONE", "2"], run.stderr
    env["GRPC_VERBOSITY"] = "ERROR"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.split() == ["ERROR", "2"], run.stderr


def test_train_if_missing_keeps_the_linked_bundle(tmp_path):
    (tmp_path / "posts_1").mkdir()
    (tmp_path / "current").symlink_to("posts_1")
    args = ["train", "--out", str(tmp_path), "--link", "current", "--if-missing"]
    result = runner.invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # rich wraps long lines at the terminal width
    assert str(tmp_path / "posts_1") in output and "not training" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "posts_1"]
    refused = runner.invoke(build_app(), ["train", "--out", str(tmp_path), "--if-missing"])
    assert refused.exit_code == 2 and "--if-missing needs --link" in refused.output


def test_data_synth_if_missing_leaves_existing_data_alone(tmp_path):
    for name in ("users.parquet", "items.parquet", "interactions.parquet"):
        (tmp_path / name).write_text("kept")
    result = runner.invoke(build_app(), ["data", "synth", "--out", str(tmp_path), "--if-missing"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "items.parquet").read_text() == "kept"
