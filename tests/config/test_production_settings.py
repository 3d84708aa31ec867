"""Production settings are the default: DEBUG off unless set, no start-up without a real
SECRET_KEY, HTTPS settings from the environment, and the README's production environment
passes `check --deploy`. Each start-up runs in a subprocess, as a server would."""

from __future__ import annotations

import subprocess
import sys

import pytest

from config.security import DEV_KEY_PREFIX, proxy_ssl_header, secret_key
from tests.config.production_env import BASE_DIR, manage, production_env


def test_readme_production_env_passes_check_deploy_with_nothing_to_report(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "DEBUG", env=production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


def test_debug_is_off_unless_set(tmp_path):
    env = production_env(tmp_path)
    del env["DEBUG"]
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.DEBUG)"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("key", ["", "dev-only-insecure-key-set-SECRET_KEY-in-production"])
def test_start_up_without_a_real_secret_key_fails_clearly(tmp_path, key):
    env = production_env(tmp_path, SECRET_KEY=key)
    result = manage("check", env=env)
    assert result.returncode != 0
    problem = "is not set" if not key else "is a development key"
    assert f"SECRET_KEY {problem} and DEBUG is off" in result.stderr
    # gunicorn loads the same settings: it refuses to start too.
    gunicorn = [sys.executable, "-m", "gunicorn", "config.wsgi", "--check-config"]
    served = subprocess.run(gunicorn, cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert served.returncode != 0
    assert f"SECRET_KEY {problem}" in served.stdout + served.stderr


def test_celery_refuses_to_start_without_a_secret_key(tmp_path):
    env = production_env(tmp_path, SECRET_KEY="")
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stdout + result.stderr


def test_development_key_is_random_per_machine_and_kept(tmp_path):
    first = secret_key("", debug=True, dev_key_file=tmp_path / "a" / "key")
    again = secret_key("", debug=True, dev_key_file=tmp_path / "a" / "key")
    other = secret_key("", debug=True, dev_key_file=tmp_path / "b" / "key")
    assert first == again != other
    assert first.startswith(DEV_KEY_PREFIX) and len(first) > 60
    assert (tmp_path / "a" / "key").stat().st_mode & 0o077 == 0


def test_no_key_in_the_repository_seeds_the_export_pseudonyms(tmp_path):
    """The pseudonyms of a development install are keyed by its own random key, which is in
    no tracked file; before, a fixed key in config/settings.py let anyone reverse them."""
    env = {**production_env(tmp_path), "DEBUG": "1", "SECRET_KEY": ""}
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "from annotate.exporters.raw import labeler_pseudonym; "
        "print(settings.SECRET_KEY); print(labeler_pseudonym(1))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    key, pseudonym = result.stdout.split()
    tracked = subprocess.run(
        ["git", "grep", "-l", "-F", key], cwd=BASE_DIR, capture_output=True, text=True
    )
    assert tracked.stdout == "" and key.startswith(DEV_KEY_PREFIX)
    assert (tmp_path / "dev-secret-key").read_text() == key
    assert len(pseudonym) >= 12


def test_https_settings_come_from_the_environment(tmp_path):
    env = production_env(
        tmp_path, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="60", SESSION_COOKIE_SECURE="0"
    )
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert result.stdout.strip().split(maxsplit=4) == [
        "False",
        "60",
        "False",
        "True",
        "('HTTP_X_FORWARDED_PROTO', 'https')",
    ], result.stderr


def test_proxy_header_setting_names_its_format():
    assert proxy_ssl_header("") is None
    assert proxy_ssl_header("HTTP_X_FORWARDED_PROTO,https") == ("HTTP_X_FORWARDED_PROTO", "https")
    with pytest.raises(Exception, match="HEADER,value"):
        proxy_ssl_header("HTTP_X_FORWARDED_PROTO")
