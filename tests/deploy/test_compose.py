"""compose.yaml (and the GPU override) parse, run only real CLI commands, and share what must be shared.

No Docker engine runs here: the files are read as YAML (anchors and merge keys resolved as compose does)
and checked for what the deployment relies on.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import CONTAINER_VARIABLES, ROOT, parse_cli

COMPOSE = ROOT / "compose.yaml"
GPU_OVERRIDE = ROOT / "compose.gpu.yaml"
# ${NAME}, ${NAME:-default}, ${NAME:?error}, nested too.
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), f"{path.name}: no services"
    return data


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of `-f base -f override` for the keys used here: mappings merge, the rest replace."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def chatsmith_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run the chatsmith image (they have a build of this repository)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if isinstance(service.get("build"), dict) and service["build"].get("context") == "."
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


@pytest.fixture(scope="module")
def gpu_compose(compose: dict[str, Any]) -> dict[str, Any]:
    return merge(compose, load(GPU_OVERRIDE))


def test_services_for_every_role(compose: dict[str, Any]) -> None:
    services = chatsmith_services(compose)
    commands = {name: service.get("command") for name, service in services.items()}
    assert commands == {
        "migrate": ["db", "upgrade"],
        "trainer": ["trainer"],
        "discord": ["bot", "discord"],
        "slack": ["bot", "slack"],
    }
    assert "postgres" in compose["services"]


@pytest.mark.parametrize("path", [COMPOSE, GPU_OVERRIDE], ids=lambda p: p.name)
def test_every_command_exists_in_the_cli(path: Path, compose: dict[str, Any]) -> None:
    data = merge(compose, load(path)) if path == GPU_OVERRIDE else load(path)
    services = chatsmith_services(data)
    assert services
    for name, service in services.items():
        command = service.get("command")
        assert isinstance(command, list), f"{name}: command in exec (list) form"
        parse_cli(command)
        healthcheck = service.get("healthcheck", {}).get("test")
        if healthcheck:
            assert healthcheck[0] == "CMD" and healthcheck[1] == "chatsmith", healthcheck
            parse_cli(healthcheck[2:])


def test_roles_share_the_database_models_volume_and_env_file(compose: dict[str, Any]) -> None:
    services = chatsmith_services(compose)
    urls = {environment(service)["CHATSMITH_DATABASE_URL"] for service in services.values()}
    assert len(urls) == 1
    assert "@postgres:5432/" in urls.pop(), "the default database is the compose PostgreSQL"
    for name, service in services.items():
        model_dir = environment(service)["CHATSMITH_MODEL_DIR"]
        mounts = [volume.split(":") for volume in service["volumes"]]
        assert ["models", model_dir] in mounts, f"{name} does not mount the models volume at {model_dir}"
        assert any(entry["path"] == ".env" for entry in service["env_file"]), name
        assert service.get("init") is True, f"{name}: tini forwards SIGTERM and reaps zombies"
    model_dirs = {environment(service)["CHATSMITH_MODEL_DIR"] for service in services.values()}
    assert len(model_dirs) == 1, "bundle paths in the database must resolve on every role"
    assert "models" in compose["volumes"]


def test_start_order_waits_for_postgres_and_the_migration(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    for name, service in chatsmith_services(compose).items():
        depends = service["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        if name != "migrate":
            assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert compose["services"]["migrate"]["restart"] == "no"


def test_bots_are_opt_in_profiles(compose: dict[str, Any]) -> None:
    """A team on one platform must not get a restart loop from the other bot's missing tokens."""
    assert compose["services"]["discord"]["profiles"] == ["discord"]
    assert compose["services"]["slack"]["profiles"] == ["slack"]
    assert "profiles" not in compose["services"]["trainer"]


def test_no_secret_is_written_into_compose() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in text
    for token_name in ("DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        # Named only to blank it for a role that must not have it; its value belongs in .env.
        for line in text.splitlines():
            if token_name in line:
                assert re.fullmatch(rf'\s*(CHATSMITH_)?{token_name}: ""', line), (
                    f"{token_name} belongs in .env, not compose.yaml: {line.strip()}"
                )


def _secret_variables() -> dict[str, tuple[str, ...]]:
    """Every platform secret of the settings, by field (`discord_token`), with each variable that sets it."""
    from chatsmith.settings import Settings

    return {field: Settings.env_names(field) for field in sorted(Settings.secret_fields())}


@pytest.mark.parametrize("path", [COMPOSE, GPU_OVERRIDE], ids=lambda p: p.name)
def test_each_role_gets_only_the_secrets_of_its_own_platform(path: Path, compose: dict[str, Any]) -> None:
    """The trainer and `migrate` talk to no platform: a token in their environment could only leak."""
    data = merge(compose, load(path)) if path == GPU_OVERRIDE else compose
    secrets = _secret_variables()
    assert {"discord_token", "slack_bot_token"} <= set(secrets)
    # .env as a team on both platforms writes it: every secret under every name it is read by.
    dotenv = {variable: f"secret-{variable}" for variables in secrets.values() for variable in variables}
    for role, service in chatsmith_services(data).items():
        # Compose gives a container the env_file's variables, then `environment` over them.
        seen = {**dotenv, **environment(service)}
        kept = sorted(field for field, variables in secrets.items() if any(seen[name] for name in variables))
        own = sorted(field for field in secrets if field.startswith(f"{role}_"))
        assert kept == own, f"{role} gets {kept}, needs {own}"


def test_gpu_variant_reserves_a_gpu_and_builds_cuda(gpu_compose: dict[str, Any]) -> None:
    trainer = gpu_compose["services"]["trainer"]
    assert trainer["build"]["args"]["TENSORFLOW_VARIANT"] == "cuda"
    assert trainer["image"] != gpu_compose["services"]["discord"]["image"], "the CUDA image has its own tag"
    devices = trainer["deploy"]["resources"]["reservations"]["devices"]
    assert any(device["driver"] == "nvidia" and "gpu" in device["capabilities"] for device in devices)
    # Layered over compose.yaml, the trainer keeps its role, database and models volume.
    assert trainer["command"] == ["trainer"]
    assert "models:/data/models" in trainer["volumes"]
    assert trainer["build"]["target"] == "trainer"
    # The bots stay on their image without TensorFlow.
    assert gpu_compose["services"]["discord"]["build"]["target"] == "bot"


def test_bots_run_the_image_without_tensorflow_and_the_trainer_the_one_with(compose: dict[str, Any]) -> None:
    services = chatsmith_services(compose)
    targets = {name: service["build"]["target"] for name, service in services.items()}
    assert targets == {"migrate": "bot", "discord": "bot", "slack": "bot", "trainer": "trainer"}
    assert services["trainer"]["build"]["args"]["TENSORFLOW_VARIANT"] == "cpu"
    assert services["discord"]["image"] == services["slack"]["image"] != services["trainer"]["image"]


@pytest.mark.parametrize("path", [COMPOSE, GPU_OVERRIDE], ids=lambda p: p.name)
def test_every_interpolated_variable_is_documented(path: Path) -> None:
    from chatsmith.settings import Settings

    documented = (ROOT / ".env.example").read_text(encoding="utf-8")
    settings = {name for field in Settings.model_fields for name in Settings.env_names(field)}
    for name in set(INTERPOLATION.findall(path.read_text(encoding="utf-8"))):
        assert name in settings or name in CONTAINER_VARIABLES, f"{path.name}: unknown variable {name}"
        assert re.search(rf"^#? ?{name}=", documented, re.MULTILINE), f"{name} is not in .env.example"
