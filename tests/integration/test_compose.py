"""docker-compose.yml lints clean and stays in step with ``prodstack.ProductionStack``.

No Docker daemon needed: dclint validates against the Compose specification, and the
rest parses the file with PyYAML (merge keys resolved, interpolation left as text).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .prodstack import AIRFLOW_ENV_KEYS, STATIC_AIRFLOW_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DCLINT = REPO_ROOT / "node_modules" / ".bin" / "dclint"

# ${NAME}, ${NAME:?msg}, ${NAME?msg}, ${NAME:-default}, ... but not $${NAME} (container-side).
REFERENCE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$|_KEY_ID$|ACCESS_KEY")
URL_USERINFO = re.compile(r"://(?P<user>[^:@/\s]*):(?P<password>[^@/\s]*)@")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose file."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and data.get("services"), "no services in docker-compose.yml"
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _is_required_reference(text: str) -> bool:
    """Whether ``text`` is exactly one ``${VAR}`` / ``${VAR:?msg}`` (no default value)."""
    match = REFERENCE.fullmatch(text)
    return bool(match) and match["op"] in (None, "?", ":?")


def test_dclint_passes() -> None:
    """scripts/lint-compose.sh (dclint, warnings fail too) accepts the file."""
    if not DCLINT.exists():
        pytest.skip("node_modules/.bin/dclint is absent: run `npm ci` (package.json pins dclint)")
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "lint-compose.sh"), "--no-color"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "service",
    [
        "airflow-api-server",
        "airflow-dag-processor",
        "airflow-init",
        "airflow-scheduler",
        "airflow-triggerer",
        "airflow-worker",
    ],
)
def test_airflow_services_set_every_prodstack_key(compose: dict[str, Any], service: str) -> None:
    """Each Airflow service sets (at least) the AIRFLOW__ variables ProductionStack sets."""
    env = _environment(compose["services"][service])
    missing = sorted(set(AIRFLOW_ENV_KEYS) - set(env))
    assert not missing, f"{service} lacks {missing} (set by tests/integration/prodstack.py)"
    for key, value in STATIC_AIRFLOW_ENV.items():
        assert env[key] == value, f"{service}: {key}={env[key]!r}, ProductionStack uses {value!r}"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith("/execution/")


def test_published_ports_bind_to_localhost(compose: dict[str, Any]) -> None:
    """Every published port is bound to 127.0.0.1; no service uses the host network."""
    published = 0
    for name, service in compose["services"].items():
        assert service.get("network_mode") != "host", f"{name} uses network_mode: host"
        for port in service.get("ports") or []:
            published += 1
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":", 1)[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port!r} beyond 127.0.0.1"
    assert published, "expected the API server, MLflow and MinIO to publish ports"


def test_no_literal_secrets(compose: dict[str, Any]) -> None:
    """Secrets come only from required ${VAR} references: no literals, no defaults."""
    problems: list[str] = []
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            where = f"{name}: {key}={value!r}"
            if SECRET_NAME.search(key) and not key.endswith("_FILE") and not _is_required_reference(value):
                problems.append(f"{where} must be a required ${{VAR}} reference")
            for match in URL_USERINFO.finditer(value):
                if not _is_required_reference(match["password"]):
                    problems.append(f"{where}: URL password must be a required ${{VAR}} reference")
    for text in _strings(compose):
        for ref in REFERENCE.finditer(text):
            if SECRET_NAME.search(ref["name"]) and ref["op"] in ("-", ":-", "+", ":+"):
                problems.append(f"secret variable with a default or alternative: {ref.group(0)}")
    assert not problems, "\n".join(problems)


def test_env_example_lists_every_variable(compose: dict[str, Any]) -> None:
    """.env.example names each variable the compose file reads; secrets stay empty there."""
    used = {ref["name"] for text in _strings(compose) for ref in REFERENCE.finditer(text)}
    example: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    assert sorted(used - set(example)) == [], "variables missing from .env.example"
    assert sorted(set(example) - used) == [], "stale variables in .env.example"
    filled = sorted(k for k, v in example.items() if SECRET_NAME.search(k) and v)
    assert filled == [], f"secrets must be empty placeholders in .env.example: {filled}"
