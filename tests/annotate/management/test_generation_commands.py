"""add_generator and generate_responses run as commands against a real `transformers serve`:
the generator row, a job run in the foreground with its progress bar, and a failing endpoint's
reason as the command's error."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotate.models import GeneratedSample, GenerationJob, Generator, Pair

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_add_generator_then_generate_responses_from_a_file(project, chat_server, tmp_path):
    out, _ = run(
        *("add_generator", "--project", "demo", "tiny", "--base-url", chat_server.base_url),
        *("--model", chat_server.model, "--temperature", "1.0", "--max-tokens", "5"),
        *("--concurrency", "3", "--api-key-env", ""),
    )
    assert "Added generator tiny to demo" in out
    generator = Generator.objects.get(name="tiny")
    assert (generator.temperature, generator.max_tokens, generator.concurrency) == (1.0, 5, 3)

    prompts = tmp_path / "prompts.jsonl"
    rows = [{"prompt": "w1 w2"}, {"prompt": [{"role": "user", "content": "w3 good"}]}]
    prompts.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out, err = run(
        "generate_responses", "--project", "demo", "--prompts", str(prompts),
        "--generators", "tiny", "--samples", "3",
    )  # fmt: skip
    assert "succeeded: 6 samples" in out
    assert "[##############################] 6/6 samples" in err
    assert GeneratedSample.objects.count() == 6
    assert Pair.objects.count() == GenerationJob.objects.get().pairs_created

    out, _ = run(
        "generate_responses", "--project", "demo", "--from-project", "--generators", "tiny",
    )  # fmt: skip
    assert "succeeded: 2 samples, 0 new pairs, 0 prompt and 0 completion tokens" in out


def test_generate_responses_fails_with_the_endpoints_reason(project, chat_server, tmp_path):
    run(
        *("add_generator", "--project", "demo", "wrong", "--base-url", chat_server.base_url),
        *("--model", "no-such-model"),
    )
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "w1"}\n')
    with pytest.raises(CommandError, match=r"failed: generator 'wrong': .* answered 400: .*"):
        run(
            "generate_responses",
            "--project",
            "demo",
            "--prompts",
            str(prompts),
            "--generators",
            "wrong",
        )


def test_the_commands_name_bad_input(project, tmp_path):
    with pytest.raises(CommandError, match="already has a generator named 'a'; nothing was added"):
        for _ in range(2):
            run(
                "add_generator",
                "--project",
                "demo",
                "a",
                "--base-url",
                "http://h/v1",
                "--model",
                "m",
            )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"nope": 1}\n')
    with pytest.raises(CommandError, match="line 2: prompt is missing"):
        run("generate_responses", "--project", "demo", "--prompts", str(bad), "--generators", "a")
    with pytest.raises(CommandError, match="no generator named b in demo"):
        run("generate_responses", "--project", "demo", "--from-project", "--generators", "b")


def test_add_generator_update_sets_the_settings_of_the_one_of_that_name(project):
    """What `make run` does for the demo's chat model: its port changes between runs."""
    args = ("add_generator", "--project", "demo", "smol", "--model", "m")
    out, _ = run(*args, "--base-url", "http://127.0.0.1:8010/v1", "--update")
    assert "Added generator smol to demo" in out
    out, _ = run(*args, "--base-url", "http://127.0.0.1:8011/v1", "--update")
    assert "Updated generator smol of demo" in out
    assert Generator.objects.get(name="smol").base_url == "http://127.0.0.1:8011/v1"
    with pytest.raises(CommandError, match="already has a generator named 'smol'; nothing was"):
        run(*args, "--base-url", "http://127.0.0.1:8012/v1")
    assert Generator.objects.count() == 1
