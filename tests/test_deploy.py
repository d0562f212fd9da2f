"""`manage.py check --deploy` is clean with production settings."""

import ast
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

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
    )
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
