"""Model export: a ModelVersion's Hugging Face folder (config, safetensors weights, tokenizer,
prefloop.json with the input format and metrics), copied to a folder or streamed as a zip."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

from annotate.errors import ApplicationError
from annotate.models import Project
from annotate.services.exports import ByteSink
from rewardtrain.models import ModelVersion

META_FILE = "prefloop.json"
# Bytes read from a weights file between two hand-offs to the streaming response.
READ_CHUNK = 1 << 20


class ModelExportError(ApplicationError, ValueError):
    """No such version, or its folder is missing; the message says which."""

    status = HTTPStatus.NOT_FOUND
    code = "model_export_refused"


def model_version_for_export(*, project: Project, version: int | None = None) -> ModelVersion:
    """The numbered version, or the active one when no number is given."""
    versions = ModelVersion.objects.filter(project=project)
    found = (
        versions.filter(version=version).first()
        if version is not None
        else versions.filter(is_active=True).first()
    )
    if found is None:
        raise ModelExportError(
            f"Project {project.slug} has no model version {version}."
            if version is not None
            else f"Project {project.slug} has no active model version (pass --version)."
        )
    return found


def model_folder(model_version: ModelVersion) -> Path:
    folder = Path(model_version.path)
    if not (folder / "config.json").is_file():
        raise ModelExportError(
            f"The folder of {model_version} is missing or holds no config.json: {folder}"
        )
    return folder


def model_meta(model_version: ModelVersion) -> dict[str, Any]:
    """prefloop.json as exported: what training wrote (input format, config, metrics) plus the
    version's record, whose metrics and promotion may have changed since."""
    path = Path(model_version.path) / META_FILE
    meta = json.loads(path.read_text()) if path.is_file() else {}
    meta.setdefault("backbone", model_version.backbone)
    meta["metrics"] = model_version.metrics or meta.get("metrics", {})
    meta["model_version"] = {
        "project": model_version.project.slug,
        "version": model_version.version,
        "is_active": model_version.is_active,
        "promotion": model_version.promotion,
        "created_at": model_version.created_at.isoformat(),
    }
    if "input_format" not in meta:
        from rewardtrain.core.model import PLAIN_FORMAT_NOTE

        meta["input_format"] = PLAIN_FORMAT_NOTE
    return meta


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != META_FILE)


def model_export(*, model_version: ModelVersion, out: Path) -> Path:
    """Copy the version's folder to `out` (which must not exist yet) with its prefloop.json."""
    folder = model_folder(model_version)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ModelExportError(f"{out} exists and is not empty.")
    shutil.copytree(folder, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(META_FILE))
    (out / META_FILE).write_text(json.dumps(model_meta(model_version), indent=2, default=str))
    return out


def model_zip_name(model_version: ModelVersion) -> str:
    return f"{model_version.project.slug}-reward-model-v{model_version.version}"


def model_zip_stream(*, model_version: ModelVersion) -> Iterator[bytes]:
    """The folder as a zip, one top folder named after the version, produced a megabyte at a
    time so that weights of any size stream with flat memory. The folder is checked now, so a
    missing one fails before any byte is sent."""
    folder = model_folder(model_version)
    meta = json.dumps(model_meta(model_version), indent=2, default=str)
    top = model_zip_name(model_version)

    def chunks() -> Iterator[bytes]:
        sink = ByteSink()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in _files(folder):
                name = f"{top}/{path.relative_to(folder).as_posix()}"
                # Weights barely compress; storing them keeps the download fast.
                stored = path.suffix in (".safetensors", ".bin", ".pt")
                info = zipfile.ZipInfo.from_file(path, name)
                info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                with open(path, "rb") as src, archive.open(info, "w", force_zip64=True) as dst:
                    while block := src.read(READ_CHUNK):
                        dst.write(block)
                        if data := sink.drain():
                            yield data
            archive.writestr(f"{top}/{META_FILE}", meta)
        yield sink.drain()

    return chunks()
