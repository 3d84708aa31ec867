"""An endpoint that answers with an empty reply, for real: `transformers serve` with a tiny model
that can only say end-of-text. The job fails naming the generator and the reason, and nothing
of it is stored or served."""

from __future__ import annotations

import pytest

from annotate.models import GeneratedSample, Pair, Response
from annotate.services.generation import generation_job_create, generator_create
from annotate.services.generation_run import generation_job_execute

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def silent_server(tmp_path_factory):
    from scripts.chat_server import ChatServer
    from tests.rewardtrain.tiny import make_chat_lm

    folder = tmp_path_factory.mktemp("silent")
    model = make_chat_lm(folder / "silent-chat", silent=True)
    server = ChatServer(model=str(model), log=folder / "serve.log").start()
    try:
        yield server
    finally:
        server.stop()


def test_an_empty_reply_fails_the_job_naming_the_generator_and_stores_nothing(
    project, silent_server
):
    generator_create(
        project=project,
        name="mute",
        base_url=silent_server.base_url,
        model=silent_server.model,
        max_tokens=4,
    )
    job = generation_job_create(
        project=project,
        generators=["mute"],
        samples=2,
        prompts=[[{"role": "user", "content": "w1 w2"}], [{"role": "user", "content": "w3"}]],
        enqueue=False,
    )
    job = generation_job_execute(job_id=job.pk)
    assert job.status == "failed"
    assert "'mute'" in job.error and "an empty reply" in job.error, job.error
    assert not GeneratedSample.objects.exists()
    assert not Response.objects.exists() and not Pair.objects.exists()
