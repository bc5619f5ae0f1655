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


def env_file_values(path: str) -> dict[str, str]:
    """KEY=VALUE lines as compose reads an env file (no quotes used in ours)."""
    lines = (ROOT / path).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def settings_from_env(env: dict[str, str], tmp_path: Path) -> Settings:
    """Settings read from ``env`` the way the service reads its environment (JSON lists)."""
    dotenv = tmp_path / "settings.env"
    dotenv.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return Settings(_env_file=dotenv)


def env_files(service: dict) -> list[str]:
    files = service.get("env_file", [])
    return [files] if isinstance(files, str) else list(files)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_recsys_variable_of_an_env_file_is_a_real_setting(name, tmp_path):
    fields = {f"RECSYS_{field.upper()}" for field in Settings.model_fields}
    for path in env_files(SERVICES[name]):
        for key, value in env_file_values(path).items():
            if key.startswith("RECSYS_"):
                assert key in fields, f"{path}: {key} is not a setting of service/settings.py"
                settings_from_env({key: value}, tmp_path)  # and its value validates


def test_auth_is_on_in_the_stack_and_the_admin_route_answers_loopback_only(tmp_path):
    api = SERVICES["api"]
    env = {}
    for path in env_files(api):
        env.update(env_file_values(path))
    env.update(api["environment"])
    settings = settings_from_env(
        {k: v for k, v in env.items() if k.startswith("RECSYS_")}, tmp_path
    )
    assert settings.api_keys and settings.admin_api_keys
    assert not set(settings.api_keys) & set(settings.admin_api_keys)
    assert settings.admin_loopback_only is True
    published = [str(p) for p in api["ports"]]
    assert published == ["8000:8000"], published  # one port; admin refused on it (not loopback)


def test_trainer_and_api_share_one_bundles_volume_and_the_jobs_are_idempotent():
    def mounts(name: str) -> dict[str, str]:
        return {v.split(":")[1]: v.split(":")[0] for v in SERVICES[name]["volumes"]}

    assert mounts("trainer")["/bundles"] == mounts("api")["/bundles"] == "bundles"
    assert mounts("indexer")["/bundles"] == "bundles"
    assert not SERVICES["trainer"]["volumes"][1].endswith(":ro")  # the trainer writes it
    assert "--if-missing" in SERVICES["datagen"]["command"]
    trainer = SERVICES["trainer"]["command"]
    assert "--if-missing" in trainer and trainer[trainer.index("--link") + 1] == "current"
    assert SERVICES["api"]["environment"]["RECSYS_BUNDLE"] == "/bundles/current"


def readme_compose_commands() -> list[list[str]]:
    """`docker compose run|exec ...` lines of the README, continuation lines joined."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    found = re.findall(r"docker compose (?:run|exec) [^\n)`]*", text)
    return [shlex.split(line.split("#")[0]) for line in found]


def test_the_readme_compose_rollout_uses_real_services_and_commands():
    commands = readme_compose_commands()
    assert {c[2] for c in commands} == {"run", "exec"}, commands
    for command in commands:
        at = next(i for i, a in enumerate(command) if i > 2 and not a.startswith("-"))
        assert set(command[3:at]) <= {"--rm", "--no-deps", "-T"}, command
        service, args = command[at], command[at + 1 :]
        assert service in SERVICES, command
        if command[2] == "exec":
            assert args[0] == "recsys", command
            args = args[1:]
        else:
            assert SERVICES[service]["build"]["dockerfile"] == "docker/train.Dockerfile"
        check_recsys_args(args)
