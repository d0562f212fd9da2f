"""`manage.py check --deploy` is clean with production settings; the gateway and the
execution's timing are checked at start-up (issue 11.3, 11.7)."""

import ast
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def production_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO_"))}
    for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS"):
        env.pop(name, None)
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="atom.example.com",
        DATABASE_URL=os.environ.get("DATABASE_URL", ""),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        # The alert channels a deployment must give (else notifications.W003/W004).
        ATOM_SMS_BACKEND="http",
        ATOM_SMS_URL="https://sms.example.com/send",
        ATOM_SMS_TOKEN="sms-token",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="smtp.example.com",
        # The platform's gateway: `simulated` pays nothing (strategies.E001).
        ATOM_GATEWAY="http",
        ATOM_GATEWAY_URL="https://platform.example.com/api",
        ATOM_GATEWAY_TOKEN="gw-token",
    )
    # The timing settings at their defaults (the lease derived from the gateway timeout).
    for name in (
        "ATOM_GATEWAY_TIMEOUT",
        "ATOM_EXECUTION_LEASE_SECONDS",
        "CELERY_VISIBILITY_TIMEOUT",
        "CELERY_TASK_TIME_LIMIT",
        "CELERY_TASK_SOFT_TIME_LIMIT",
    ):
        env.pop(name, None)
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = check_deploy(production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_complains_about_a_debug_run():
    result = check_deploy(production_env() | {"DEBUG": "true"})
    assert result.returncode != 0
    assert "security.W018" in result.stderr + result.stdout  # DEBUG on in deployment


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    env.pop("SECRET_KEY")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def settings_variables() -> set[str]:
    """Every NAME the settings read with ``env.<cast>("NAME", ...)``."""
    tree = ast.parse((ROOT / "atomsite" / "settings.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "env"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def test_env_example_documents_every_variable_the_settings_read():
    documented = set(
        re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)
    )
    read = settings_variables()
    assert len(read) > 30
    assert read - documented == set(), "add them to .env.example with a comment"


def procfile() -> dict[str, str]:
    return dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )


def test_procfile_runs_two_gunicorn_pools_a_worker_and_exactly_one_beat():
    lines = procfile()
    assert set(lines) == {"web", "api", "worker", "beat"}
    for pool in ("web", "api"):
        assert lines[pool].split()[:2] == ["gunicorn", "atomsite.wsgi"]
        assert f"--config deploy/gunicorn/{pool}.py" in lines[pool]
    assert "--bind 0.0.0.0:${PORT" in lines["web"]
    assert "--bind 0.0.0.0:${API_PORT" in lines["api"]
    assert "DatabaseScheduler" in lines["beat"] and "beat" in lines["beat"]
    assert " beat" not in lines["worker"] and "-B" not in lines["worker"].split()


def test_check_deploy_warns_when_alerts_would_only_reach_the_log():
    env = production_env()
    env.update(
        ATOM_SMS_BACKEND="console", EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend"
    )
    result = check_deploy(env)
    assert result.returncode != 0
    assert "notifications.W003" in result.stderr and "notifications.W004" in result.stderr


def test_each_gunicorn_pool_loads_its_config_and_the_app():
    for pool in ("web", "api"):
        argv = procfile()[pool].split()
        result = subprocess.run(
            [str(Path(sys.executable).with_name("gunicorn")), *argv[1:], "--check-config"],
            cwd=ROOT,
            env=production_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_refuses_the_simulated_gateway_in_production():
    """Issue 11.7: it marks approvals executed with no platform call at all."""
    result = check_deploy(production_env() | {"ATOM_GATEWAY": "simulated"})
    assert result.returncode != 0
    assert "strategies.E001" in result.stderr
    assert "ERRORS:" in result.stderr  # an error, not a warning to silence


def test_the_simulated_gateway_is_no_error_in_a_debug_run():
    # The demo runs with DEBUG on and the simulated gateway (the banner says so).
    result = check_deploy(production_env() | {"DEBUG": "true", "ATOM_GATEWAY": "simulated"})
    assert "strategies.E001" not in result.stderr + result.stdout


def test_check_refuses_an_http_gateway_without_its_url():
    env = production_env()
    env.pop("ATOM_GATEWAY_URL")
    result = check(env)
    assert result.returncode != 0
    assert "strategies.E005" in result.stderr


def check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        # The lease must outlive an attempt: 2 x 5 s + 2 s.
        ({"ATOM_EXECUTION_LEASE_SECONDS": "11"}, "strategies.E002"),
        ({"ATOM_GATEWAY_TIMEOUT": "0"}, "strategies.E002"),
        # The soft time limit must not cut an attempt short.
        ({"CELERY_TASK_SOFT_TIME_LIMIT": "12", "CELERY_TASK_TIME_LIMIT": "20"}, "strategies.E003"),
        ({"ATOM_GATEWAY_TIMEOUT": "30"}, "strategies.E003"),
        # A task waiting out a lease must not be re-delivered as a copy.
        (
            {
                "ATOM_EXECUTION_LEASE_SECONDS": "50",
                "CELERY_VISIBILITY_TIMEOUT": "50",
                "CELERY_TASK_TIME_LIMIT": "40",
            },
            "strategies.E004",
        ),
    ],
)
def test_start_up_refuses_a_lease_time_limit_and_deadline_that_could_overlap(overrides, error):
    result = check(production_env() | overrides)
    assert result.returncode != 0
    assert error in result.stderr


def test_the_derived_lease_passes_the_check_whatever_the_gateway_timeout():
    for timeout in ("0.5", "5", "20"):
        result = check(production_env() | {"ATOM_GATEWAY_TIMEOUT": timeout})
        assert result.returncode == 0, result.stderr


@pytest.mark.worker
def test_a_celery_worker_refuses_to_start_with_a_lease_shorter_than_a_call():
    """Celery runs Django's checks at start-up but ignores their errors: the worker stops."""
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "atomsite",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=production_env() | {"ATOM_EXECUTION_LEASE_SECONDS": "3"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "strategies.E002" in result.stdout + result.stderr
    assert " ready." not in result.stdout + result.stderr
