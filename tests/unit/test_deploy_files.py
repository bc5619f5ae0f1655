"""docker-compose.yml and the Dockerfiles, checked without a docker engine (none here):
structure, pinned images, health checks, start order, and that every command and setting
they use exists in this code base."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main
import yaml

from service.cli import build_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
INFRA = {"etcd", "minio", "milvus", "redis"}
JOBS = {"datagen", "trainer", "indexer", "profiles"}


def check_recsys_args(args: list[str]) -> None:
    """``args`` (after ``recsys``) name a real subcommand and only options it has.

    Walks Typer's command tree (Typer vendors its own click, hence the duck typing)."""
    command = typer.main.get_command(build_app())
    rest = list(args)
    while hasattr(command, "list_commands") and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        sub = command.get_command(command.make_context("recsys", [], resilient_parsing=True), name)
        assert sub is not None, f"no `recsys ... {name}` command (in {args})"
        command = sub
    options = {opt for p in command.params for opt in getattr(p, "opts", [])}
    for arg in rest:
        if arg.startswith("--"):
            assert arg in options, f"`{arg}` is not an option of {command.name} ({args})"
    command.make_context(command.name, list(rest), resilient_parsing=False)  # parses cleanly


def test_services_are_the_stack_of_the_issue():
    assert set(SERVICES) == INFRA | JOBS | {"api"}


@pytest.mark.parametrize("name", sorted(INFRA))
def test_infrastructure_images_are_pinned_and_healthchecked(name):
    image = SERVICES[name]["image"]
    repo, _, tag = image.rpartition(":")
    assert repo and tag and tag != "latest" and re.search(r"\d", tag), image
    assert SERVICES[name]["healthcheck"]["test"]


def test_milvus_is_the_2_5_line_with_its_etcd_and_minio():
    milvus = SERVICES["milvus"]
    assert re.fullmatch(r"milvusdb/milvus:v2\.5\.\d+", milvus["image"])
    assert milvus["environment"]["ETCD_ENDPOINTS"] == "etcd:2379"
    assert milvus["environment"]["MINIO_ADDRESS"] == "minio:9000"
    for dep in ("etcd", "minio"):
        assert milvus["depends_on"][dep]["condition"] == "service_healthy"


def test_minio_credentials_come_from_an_env_file_and_are_not_the_defaults():
    env_file = ROOT / SERVICES["minio"]["env_file"]
    assert SERVICES["milvus"]["env_file"] == SERVICES["minio"]["env_file"]
    values = dict(
        line.split("=", 1)
        for line in env_file.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert values["MINIO_ROOT_USER"] == values["MINIO_ACCESS_KEY_ID"] != "minioadmin"
    assert values["MINIO_ROOT_PASSWORD"] == values["MINIO_SECRET_ACCESS_KEY"] != "minioadmin"
    for name in ("minio", "milvus"):
        assert "MINIO_ROOT_PASSWORD" not in SERVICES[name].get("environment", {})


def test_start_order():
    def conditions(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in SERVICES[name]["depends_on"].items()}

    assert conditions("trainer") == {"datagen": "service_completed_successfully"}
    indexer = conditions("indexer")
    assert indexer["trainer"] == "service_completed_successfully"
    assert indexer["milvus"] == "service_healthy"
    api = conditions("api")
    assert api["indexer"] == api["profiles"] == "service_completed_successfully"
    assert api["milvus"] == api["redis"] == "service_healthy"
    assert "readyz" in " ".join(SERVICES["api"]["healthcheck"]["test"])
    for job in JOBS:
        assert SERVICES[job]["restart"] == "no"


@pytest.mark.parametrize("name", sorted(JOBS))
def test_job_commands_are_real_recsys_commands(name):
    service = SERVICES[name]
    assert service["build"]["dockerfile"] == "docker/train.Dockerfile"
    check_recsys_args([str(a) for a in service["command"]])


def test_the_api_runs_recsys_serve_and_the_indexer_uses_hnsw_on_milvus():
    dockerfile = (ROOT / "docker/api.Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd and yaml.safe_load(cmd.group(1)) == ["recsys", "serve"]
    check_recsys_args(["serve"])
    indexer_env = SERVICES["indexer"]["environment"]
    assert indexer_env["RECSYS_MILVUS_INDEX"] == "hnsw"
    assert indexer_env["RECSYS_MILVUS_URI"] == "http://milvus:19530"


@pytest.mark.parametrize("name", sorted(JOBS | {"api"}))
def test_every_recsys_variable_is_a_real_setting(name):
    fields = {f"RECSYS_{field.upper()}" for field in Settings.model_fields}
    env = SERVICES[name].get("environment", {})
    for key, value in env.items():
        assert key in fields, f"{name}: {key} is not a setting of service/settings.py"
        Settings(**{key.removeprefix("RECSYS_").lower(): value})  # and its value validates


def dockerfile_installs(path: str) -> list[str]:
    text = (ROOT / path).read_text().replace("\\\n", " ")
    return [
        arg
        for line in text.splitlines()
        if line.startswith("RUN") and "pip install" in line
        for arg in shlex.split(line.split("pip install", 1)[1].split("&&")[0])
    ]


def test_api_image_installs_the_service_without_tensorflow():
    assert dockerfile_installs("docker/api.Dockerfile") == ["."]
    text = (ROOT / "docker/api.Dockerfile").read_text()
    assert "COPY training" not in text
    assert re.search(r"^USER recsys$", text, re.M)
    assert "HEALTHCHECK" in text and "/readyz" in text
    assert text.startswith("#") and "FROM python:3.11-slim" in text


def test_train_image_installs_the_train_extra_only():
    assert dockerfile_installs("docker/train.Dockerfile") == [".[train]"]
    assert re.search(r"^USER recsys$", (ROOT / "docker/train.Dockerfile").read_text(), re.M)


def test_the_base_install_has_no_tensorflow_and_dockerignore_keeps_data_out():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    assert "tensorflow" not in base and "tf2onnx" not in base and "torch" not in base
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", "data/", "bundles/", ".git"):
        assert entry in ignored
