"""Model export: the export_model command copies a ModelVersion's Hugging Face folder, staff
download it as a zip, and the exported folder scores as the app's scorer does."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command

from rewardtrain.models import ModelVersion
from rewardtrain.services.model_exports import model_export, model_version_for_export
from tests.rewardtrain.tiny import make_bert

PROMPTS = [
    "w1 w2 w3",
    [
        {"role": "user", "content": "w4 w5"},
        {"role": "assistant", "content": "w6"},
        {"role": "user", "content": "w7"},
    ],
    "w8",
]
RESPONSES = ["good w1 good", "bad w9", "good"]


def saved_version(project, tmp_path: Path, version: int, *, active: bool, seed: int = 0):
    folder = make_bert(tmp_path / f"v{version}", seed=seed)
    (folder / "prefloop.json").write_text(
        json.dumps({"format": 1, "input_format": "plain turns", "max_length": 48, "metrics": {}})
    )
    return ModelVersion.objects.create(
        project=project,
        version=version,
        path=str(folder),
        backbone="tiny-bert",
        metrics={"test": {"accuracy": 0.75}},
        is_active=active,
        promotion={"promoted": active, "reason": "first model", "compared_to": None},
    )


@pytest.fixture
def versions(project, tmp_path):
    return (
        saved_version(project, tmp_path, 1, active=False, seed=1),
        saved_version(project, tmp_path, 2, active=True, seed=2),
    )


def hf_rewards(folder: Path, prompts, responses) -> list[float]:
    """Rewards computed with plain transformers, following prefloop.json's input format."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardtrain.core.model import format_input

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    out = []
    with torch.inference_mode():
        for prompt, response in zip(prompts, responses, strict=True):
            enc = tokenizer(format_input(tokenizer, prompt, response), return_tensors="pt")
            out.append(model(**enc).logits[0, 0].item())
    return out


def test_command_copies_the_active_version_by_default(project, versions, tmp_path):
    out = tmp_path / "export"
    stdout = io.StringIO()
    call_command("export_model", "--project", "demo", "--out", str(out), stdout=stdout)
    assert "v2" in stdout.getvalue()
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "prefloop.json"} <= names
    meta = json.loads((out / "prefloop.json").read_text())
    assert meta["input_format"] == "plain turns" and meta["max_length"] == 48
    assert meta["metrics"] == {"test": {"accuracy": 0.75}}
    assert meta["model_version"]["version"] == 2 and meta["model_version"]["is_active"]
    source = Path(versions[1].path)
    assert (out / "model.safetensors").read_bytes() == (source / "model.safetensors").read_bytes()


def test_command_exports_a_given_version_and_refuses_what_is_missing(project, versions, tmp_path):
    out = tmp_path / "export-v1"
    call_command("export_model", "--project", "demo", "--version", "1", "--out", str(out))
    assert json.loads((out / "prefloop.json").read_text())["model_version"]["version"] == 1
    with pytest.raises(CommandError, match="not empty"):
        call_command("export_model", "--project", "demo", "--version", "1", "--out", str(out))
    with pytest.raises(CommandError, match="no model version 9"):
        call_command(
            "export_model", "--project", "demo", "--version", "9", "--out", str(tmp_path / "x")
        )
    ModelVersion.objects.filter(project=project).update(is_active=False)
    with pytest.raises(CommandError, match="no active model version"):
        call_command("export_model", "--project", "demo", "--out", str(tmp_path / "y"))


def test_exported_folder_scores_as_the_apps_scorer(project, versions, tmp_path):
    from rewardtrain.core.scoring import RewardScorer

    version = model_version_for_export(project=project)
    out = model_export(model_version=version, out=tmp_path / "exported")
    app = RewardScorer.load(version.path, device="cpu").score(PROMPTS, RESPONSES)
    assert hf_rewards(out, PROMPTS, RESPONSES) == pytest.approx(app, abs=1e-5)
    assert RewardScorer.load(out, device="cpu").score(PROMPTS, RESPONSES) == app


def test_staff_download_streams_the_folder_as_a_zip(client, staff, project, versions, tmp_path):
    client.force_login(staff)
    training_page = client.get("/projects/demo/training/").content.decode()
    assert 'href="/projects/demo/models/1/download/"' in training_page
    response = client.get("/projects/demo/models/1/download/")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="demo-reward-model-v1.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "demo-reward-model-v1/model.safetensors" in archive.namelist()
    assert (
        archive.getinfo("demo-reward-model-v1/model.safetensors").compress_type
        == zipfile.ZIP_STORED
    )
    archive.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / "demo-reward-model-v1"
    meta = json.loads((folder / "prefloop.json").read_text())
    assert meta["model_version"]["version"] == 1 and not meta["model_version"]["is_active"]
    from rewardtrain.core.scoring import RewardScorer

    original = RewardScorer.load(versions[0].path, device="cpu").score(PROMPTS, RESPONSES)
    assert hf_rewards(folder, PROMPTS, RESPONSES) == pytest.approx(original, abs=1e-5)


def test_model_download_is_staff_only(client, staff, labeler, project, versions):
    client.force_login(labeler)
    assert client.get("/projects/demo/models/2/download/").status_code == 403
    client.force_login(staff)
    assert client.get("/projects/demo/models/7/download/").status_code == 404
    client.logout()
    assert client.get("/projects/demo/models/2/download/").status_code == 302
