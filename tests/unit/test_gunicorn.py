"""The production server as the README starts it (gunicorn, reading ./gunicorn.conf.py): it
refuses to start several workers without REDIS_URL in production (each would count failed
sign-ins on its own), and its access log keeps no query string, so a customer search never
leaves a name in the log."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CRM_ENV")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'crm.sqlite'}", SECRET_KEY="x" * 32,
               CRM_PUBLIC_URL="https://crm.example.com",
               MAIL_OUTBOX_DIR=str(tmp_path / "outbox"), **extra)
    return env


def _start(tmp_path, workers: int, **env):
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    process = subprocess.Popen(
        [str(GUNICORN), "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--access-logfile", str(tmp_path / "access.log"), "app:app"],
        cwd=ROOT, env=_environment(tmp_path, **env), stdout=log.open("w"),
        stderr=subprocess.STDOUT)
    return process, port, log


def _answering(process, port: int) -> bool:
    for _ in range(200):
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture
def stop():
    started = []
    yield started.append
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def test_production_refuses_two_workers_without_redis(tmp_path):
    process, _, log = _start(tmp_path, 2, CRM_ENV="production")

    assert process.wait(timeout=60) != 0
    assert "2 workers and no REDIS_URL" in log.read_text()


def test_production_starts_two_workers_that_share_redis(tmp_path, stop):
    redis = os.environ.get("CRM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    process, port, log = _start(tmp_path, 2, CRM_ENV="production", REDIS_URL=redis)
    stop(process)

    assert _answering(process, port), log.read_text()[-2000:]
    assert "REDIS_URL" not in log.read_text()


def test_development_warns_but_starts(tmp_path, stop):
    process, port, log = _start(tmp_path, 2)
    stop(process)

    assert _answering(process, port), log.read_text()[-2000:]
    assert "2 workers and no REDIS_URL" in log.read_text()


def test_the_access_log_keeps_no_search_term(tmp_path, stop):
    process, port, log = _start(tmp_path, 1)
    stop(process)
    assert _answering(process, port), log.read_text()[-2000:]

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/admin/owner/customer/?search=Quillfeather",
        headers={"Referer": f"http://127.0.0.1:{port}/admin/owner/customer/?search=Ottoline"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200  # the sign-in page, after a redirect
    process.terminate()
    process.wait(timeout=30)

    access = (tmp_path / "access.log").read_text()
    assert "GET /admin/owner/customer/ HTTP/1.1" in access
    assert "Quillfeather" not in access and "Ottoline" not in access and "search=" not in access
