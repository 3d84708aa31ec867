"""The API keeps its OpenAPI contract: Schemathesis runs every phase (examples, coverage,
fuzzing, stateful) with every check against a live server, once as staff and once as a
labeler, and finds nothing. Examples per operation are bounded to keep the run short; every
integer is bounded, so the coverage phase sends the 64-bit edges to each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from annotate.integers import INT64_MAX, INT64_MIN
from tests.factories import MembershipFactory, make_pair
from tests.rewardtrain.queue_helpers import broker  # noqa: F401 - a fixture

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = "5"
PASSWORD = "pw-for-tests"  # tests/factories.py


@pytest.fixture
def api_world(project, labeler, staff, broker):  # noqa: F811 - the fixture
    """A project with open pairs, the labeler and staff on it, and a real broker for
    "retrain now" (no worker: runs stay queued)."""
    MembershipFactory(project=project, user=staff)
    for i in range(12):
        make_pair(project, f"Question {i}?", a=f"Answer {i}.", b=f"Reply {i}.")
    return project


def test_the_schema_and_docs_need_a_signed_in_user(labeler):
    anonymous = Client()
    for path in ("/api/schema/", "/api/docs/"):
        assert anonymous.get(path).status_code in (401, 403)
    token = Token.objects.create(user=labeler)
    signed_in = Client(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    assert signed_in.get("/api/schema/").status_code == 200
    assert signed_in.get("/api/docs/").status_code == 200


def with_integer_bounds(node: Any) -> Any:
    """The schema with every integer that states no bound given the signed 64-bit one, the
    most any column holds: Schemathesis' coverage phase sends each bound and one past it
    (2^63, -2^63 - 1), so an integer input that loses its bound in the server's schema is
    still probed past what the database takes (tests/annotate/api/test_integer_bounds.py
    holds every request integer to a stated bound)."""
    if isinstance(node, list):
        return [with_integer_bounds(inner) for inner in node]
    if not isinstance(node, dict):
        return node
    node = {key: with_integer_bounds(inner) for key, inner in node.items()}
    if node.get("type") == "integer":
        node.setdefault("minimum", INT64_MIN)
        node.setdefault("maximum", INT64_MAX)
    return node


def schemathesis_start(base_url: str, user, tmp_path: Path) -> subprocess.Popen:
    """Schemathesis against the live server as this user: it reads the schema as the user
    sees it, then signs in through POST /api/token/ (tests/config/schemathesis.toml)."""
    client = Client()
    client.force_login(user)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    folder = tmp_path / user.username
    folder.mkdir()
    (folder / "schema.json").write_text(json.dumps(with_integer_bounds(schema.json())))
    return subprocess.Popen(
        [
            *(str(SCHEMATHESIS), "--config-file", str(CONFIG), "--no-color", "run"),
            *(str(folder / "schema.json"), "--url", base_url),
            *("--phases", "examples,coverage,fuzzing,stateful"),
            *("--checks", "all"),
            *("--max-examples", MAX_EXAMPLES),
            *("--seed", "1"),
            *("--workers", "1"),
            *("--request-timeout", "60"),
            *("--report", "junit", "--report-dir", str(folder / "report")),
        ],
        stdout=(folder / "out.txt").open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PREFLOOP_USERNAME": user.username, "PREFLOOP_PASSWORD": PASSWORD},
    )


def test_schemathesis_finds_no_failure_as_staff_or_as_a_labeler(
    live_server, api_world, staff, labeler, tmp_path
):
    # Both at once, each as one client: the run takes as long as the longer of the two.
    runs = {
        user.username: schemathesis_start(live_server.url, user, tmp_path)
        for user in (staff, labeler)
    }
    for run in runs.values():
        run.wait(timeout=600)
    operations = sum(
        len(methods)
        for methods in json.loads((tmp_path / "admin" / "schema.json").read_text())[
            "paths"
        ].values()
    )
    assert operations >= 13
    for name, run in runs.items():
        output = (tmp_path / name / "out.txt").read_text()
        assert run.returncode == 0, f"as {name}:\n{output[-20000:]}"
        # Every operation was tried, none left out.
        assert f"Tested: {operations}" in output, output[-3000:]
