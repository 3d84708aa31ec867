"""The API keeps its OpenAPI contract: Schemathesis runs every phase (examples, coverage,
fuzzing, stateful) against a live server, once as staff and once as a labeler, with every
check on, and finds nothing. Examples per operation are bounded to keep the run short."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from tests.factories import MembershipFactory, make_pair
from tests.rewardtrain.queue_helpers import broker  # noqa: F401 - a fixture

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = "8"


@pytest.fixture
def api_world(project, labeler, staff, broker):  # noqa: F811 - the fixture
    """A project with open pairs, the labeler and staff on it, and a real broker for
    "retrain now" (no worker: runs stay queued)."""
    MembershipFactory(project=project, user=staff)
    for i in range(12):
        make_pair(project, f"Question {i}?", a=f"Answer {i}.", b=f"Reply {i}.")
    return project


def schemathesis_run(base_url: str, user, tmp_path: Path) -> subprocess.CompletedProcess:
    token = Token.objects.create(user=user)
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{base_url}/api/schema/",
            *("--phases", "examples,coverage,fuzzing,stateful"),
            *("--checks", "all"),
            *("--max-examples", MAX_EXAMPLES),
            *("--seed", "1"),
            *("--workers", "1"),
            *("--header", f"Authorization: Token {token.key}"),
            *("--request-timeout", "60"),
            *("--report", "junit", "--report-dir", str(tmp_path / "report")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("who", ["staff", "labeler"])
def test_schemathesis_finds_no_failure(live_server, api_world, staff, labeler, who, tmp_path):
    result = schemathesis_run(live_server.url, {"staff": staff, "labeler": labeler}[who], tmp_path)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
