"""Generation jobs against a real `transformers serve` (the session's chat_server): each sample
stored once with its provenance, pairs by the candidate rule once a prompt is whole, a server
stopped mid-job and started again, cancel and resume, an endpoint's own errors."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from annotate.generation.client import EndpointError
from annotate.importers.candidates import pair_indices
from annotate.models import GeneratedSample, GenerationJob, Pair, Response
from annotate.services.generation import (
    GenerationConflict,
    GenerationInvalid,
    generation_job_cancel,
    generation_job_create,
    generation_job_resume,
    generator_create,
    generator_test,
    prompts_read,
)
from annotate.services.generation_run import generation_job_execute

pytestmark = pytest.mark.django_db


def _generator(project, server, name: str, **values):
    defaults = {"temperature": 1.0, "max_tokens": 6, "seed": 7, "concurrency": 4}
    return generator_create(
        project=project,
        name=name,
        base_url=server.base_url,
        model=server.model,
        **{**defaults, **values},
    )


def _prompts(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"w{i} w{i + 1} good"}] for i in range(n)]


def _job(project, names, n_prompts, samples=2):
    return generation_job_create(
        project=project,
        generators=names,
        samples=samples,
        prompts=_prompts(n_prompts),
        enqueue=False,
    )


def _assert_each_sample_once(job: GenerationJob) -> None:
    keys = Counter(
        GeneratedSample.objects.filter(prompt__in=job.prompts.all()).values_list(
            "prompt_id", "generator_id", "index"
        )
    )
    assert len(keys) == job.total and set(keys.values()) == {1}


def _assert_pairs_by_the_candidate_rule(job: GenerationJob) -> None:
    for prompt in job.prompts.all():
        distinct = set(prompt.samples.values_list("response_id", flat=True))
        expected = len(pair_indices(len(distinct))) if len(distinct) > 1 else 0
        assert Pair.objects.filter(prompt=prompt).count() == expected


def test_a_job_stores_each_sample_with_its_provenance_and_pairs_them(project, chat_server):
    _generator(project, chat_server, "alpha")
    _generator(project, chat_server, "beta", temperature=0.7, seed=100, concurrency=2)
    job = generation_job_execute(job_id=_job(project, ["alpha", "beta"], 4).pk)

    assert job.status == "succeeded", job.error
    assert (job.done, job.total) == (16, 16)
    assert job.completion_tokens == 16 * 6 and job.prompt_tokens > 0
    _assert_each_sample_once(job)
    _assert_pairs_by_the_candidate_rule(job)
    assert job.pairs_created == Pair.objects.filter(project=project).count() > 0
    response = Response.objects.filter(generator__name="beta").first()
    assert response.model_name == chat_server.model
    assert response.sampling["temperature"] == 0.7 and response.sampling["max_tokens"] == 6
    assert response.sampling["seed"] in (100, 101)
    assert response.completion_tokens == 6 and response.prompt_tokens > 0
    assert response.latency_ms > 0


def test_what_is_generated_is_never_asked_again(project, chat_server):
    _generator(project, chat_server, "alpha")
    first = generation_job_execute(job_id=_job(project, ["alpha"], 3).pk)
    responses = Response.objects.count()
    pairs = Pair.objects.count()
    # The endpoint is down: a job asking for nothing new must not need it.
    chat_server.stop()
    try:
        again = generation_job_execute(job_id=_job(project, ["alpha"], 3).pk)
    finally:
        chat_server.start()
    assert first.status == again.status == "succeeded", again.error
    assert (again.done, again.total, again.completion_tokens) == (6, 6, 0)
    assert Response.objects.count() == responses and Pair.objects.count() == pairs
    assert GeneratedSample.objects.count() == 6


def test_a_server_stopped_mid_job_and_started_again_loses_and_doubles_nothing(
    project, chat_server, settings
):
    # Far more than a restart needs: on a loaded machine (load 12 on 2 cores) a restart took
    # over a minute, longer than 20 retries (about 70 s of backoff) waited.
    settings.GENERATION_MAX_RETRIES = 200
    # Long enough (48 samples of 32 tokens, two at a time) that a progress tick always finds
    # work left to do: a job that finished within one tick would never see the outage.
    _generator(project, chat_server, "alpha", concurrency=2, max_tokens=32)
    job = _job(project, ["alpha"], 24)
    restarted: list[threading.Thread] = []

    def restart_once(progress: GenerationJob) -> None:
        if 2 <= progress.done <= progress.total - 8 and not restarted:
            chat_server.stop()
            restarted.append(threading.Thread(target=chat_server.start))
            restarted[0].start()

    job = generation_job_execute(job_id=job.pk, on_progress=restart_once)
    assert restarted, "the server was never stopped mid-job"
    restarted[0].join()
    assert chat_server.healthy()
    assert job.status == "succeeded", job.error
    assert job.errors > 0  # the requests refused while it was down, each retried
    _assert_each_sample_once(job)
    _assert_pairs_by_the_candidate_rule(job)


def test_a_cancelled_job_keeps_whole_prompts_only_and_resumes_where_it_stopped(
    project, chat_server
):
    _generator(project, chat_server, "alpha", concurrency=1, max_tokens=16)
    job = _job(project, ["alpha"], 20)

    def cancel_early(progress: GenerationJob) -> None:
        if progress.done >= 3 and not progress.cancel_requested:
            progress.cancel_requested = generation_job_cancel(job=job).cancel_requested

    job = generation_job_execute(job_id=job.pk, on_progress=cancel_early)
    assert job.status == "cancelled"
    assert 3 <= job.done < job.total
    whole = [p for p in job.prompts.all() if p.samples.count() == 2]
    assert set(Pair.objects.values_list("prompt_id", flat=True)) <= {p.pk for p in whole}
    with pytest.raises(GenerationConflict):
        generation_job_cancel(job=job)

    asked_before = GeneratedSample.objects.count()
    job = generation_job_execute(job_id=generation_job_resume(job=job, enqueue=False).pk)
    assert job.status == "succeeded", job.error
    assert job.completion_tokens == 16 * job.total  # each sample asked for once, over both runs
    assert GeneratedSample.objects.count() == job.total > asked_before
    _assert_each_sample_once(job)
    _assert_pairs_by_the_candidate_rule(job)


def test_an_endpoint_that_refuses_fails_the_job_with_its_own_error(project, chat_server):
    _generator(project, chat_server, "alpha")
    _generator(project, chat_server, "wrong-model", concurrency=1).__class__.objects.filter(
        name="wrong-model"
    ).update(model="no-such-model")
    job = generation_job_execute(job_id=_job(project, ["alpha", "wrong-model"], 2).pk)
    assert job.status == "failed"
    assert "generator 'wrong-model'" in job.error and "no-such-model" in job.error
    assert "400" in job.error
    # Prompts missing a sample get no pairs: nothing half-generated reaches labelers.
    assert not Pair.objects.exists()


def test_an_unreachable_endpoint_fails_the_job_naming_the_generator(project, settings):
    settings.GENERATION_MAX_RETRIES = 1
    generator_create(
        project=project, name="gone", base_url="http://127.0.0.1:9/v1", model="m", concurrency=1
    )
    job = generation_job_execute(job_id=_job(project, ["gone"], 1, samples=1).pk)
    assert job.status == "failed"
    assert job.error.startswith("generator 'gone': could not reach http://127.0.0.1:9/v1")
    assert job.errors == 2


def test_a_test_prompt_answers_or_names_the_generator(project, chat_server, monkeypatch):
    generator = _generator(project, chat_server, "alpha")
    assert generator_test(generator=generator).text.strip()
    generator.api_key_env = "PREFLOOP_TEST_UNSET_KEY"
    monkeypatch.delenv("PREFLOOP_TEST_UNSET_KEY", raising=False)
    with pytest.raises(EndpointError, match="generator 'alpha': the environment variable"):
        generator_test(generator=generator)


def test_generator_settings_are_checked(project):
    generator_create(project=project, name="a", base_url="http://h/v1", model="m")
    with pytest.raises(GenerationInvalid, match="already has a generator named 'a'"):
        generator_create(project=project, name="a", base_url="http://h/v1", model="m")
    with pytest.raises(GenerationInvalid, match="base_url"):
        generator_create(project=project, name="b", base_url="not a url", model="m")
    with pytest.raises(GenerationInvalid, match="unknown generator settings: api_key"):
        generator_create(project=project, name="c", base_url="http://h/v1", model="m", api_key="x")
    with pytest.raises(GenerationInvalid, match=r"no generator named zzz in demo \(it has: a\)"):
        generation_job_create(project=project, generators=["zzz"], prompts=_prompts(1))


def test_a_prompts_file_names_each_bad_line():
    assert prompts_read(['{"prompt": "hi"}', "", '{"prompt": [{"role": "user", "content": "x"}]}'])
    with pytest.raises(GenerationInvalid) as caught:
        prompts_read(['{"prompt": "hi"}', "not json", "[1]", '{"prompt": ""}'])
    message = str(caught.value)
    assert "line 2: not JSON" in message and "line 3: not a JSON object" in message
    assert "line 4: prompt is empty" in message
