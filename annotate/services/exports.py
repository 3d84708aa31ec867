"""Dataset export: rows from the shared dataset rule, written in one format, with a manifest and
a dataset card. One service behind the command, the staff page and the API."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any, BinaryIO

from django.contrib.auth import get_user_model
from django.utils import timezone

from annotate.errors import ApplicationError
from annotate.exporters import COMPARISON, FORMAT_NAMES, SHAPES, ExportContext, get_format
from annotate.exporters.card import dataset_card
from annotate.models import Comparison, Project
from annotate.selectors.dataset import DatasetFilter, DatasetStats, preference_rows
from annotate.selectors.exports import comparison_rows
from annotate.services.exports_sets import SetExport, wants_sets
from annotate.splits import SPLITS, SnapshotHasher

# Whose comparisons: all that training counts (AI judges' when the project's judges enter
# training), people's only, imported ones only, or AI judges' only.
SOURCES = ("all", "human", "imported", "ai_judge")
AI_JUDGE = Comparison.Source.AI_JUDGE.value
# Rows written between two hand-offs of the bytes to a streaming response.
CHUNK = 2000


class ExportError(ApplicationError, ValueError):
    """An export that cannot run as asked; the message says why."""

    status = HTTPStatus.BAD_REQUEST
    code = "export_refused"


@dataclass
class ExportOptions:
    """What to export. The defaults export what the trainer trains on."""

    format: str = "trl"
    shape: str = "trl"  # csv and parquet only: the trl table or the raw one
    drop_ties: bool = False
    min_agreement: float | None = None
    source: str = "all"  # all | human | imported | ai_judge (staff adjudications always count)
    no_ai: bool = False  # leave AI judges' comparisons out (of "all")
    since: datetime | None = None
    until: datetime | None = None  # exclusive
    labelers: list[str] | None = None  # usernames
    split: str | None = None
    include_excluded: bool = False
    real_usernames: bool = False
    # Rankings and ratings as TRL pairs (annotate/services/exports_sets.py): all, best-vs-rest
    # or rating-margin (at least min_margin apart on `aspect`, or on the mean of the aspects).
    pairs_from: str | None = None
    min_margin: float | None = None
    aspect: str | None = None


# The options as named on a command line (dashes for underscores) and in a query string.
OPTION_NAMES = tuple(f.name for f in fields(ExportOptions))


def parse_moment(text: str, *, end: bool = False) -> datetime:
    """An ISO date or datetime from a command line or a query string. A plain date as the end
    of a range means the whole of that day (the next midnight, exclusive)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ExportError(f"Not a date: {text!r} (use YYYY-MM-DD or an ISO datetime).") from exc
    if len(text) <= 10:  # a date only
        day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


def export_options(
    *,
    since: str | None = None,
    until: str | None = None,
    labelers: str | None = None,
    split: str | None = None,
    **values: Any,
) -> ExportOptions:
    """Options from text input (a command line, a query string): dates parsed, the labeler
    list split on commas, empty values taken as absent."""
    return ExportOptions(
        since=parse_moment(since) if since else None,
        until=parse_moment(until, end=True) if until else None,
        labelers=[u.strip() for u in labelers.split(",") if u.strip()] if labelers else None,
        split=split or None,
        **values,
    )


class _HashingStream(io.RawIOBase):
    """Passes bytes through to the real stream, counting them and hashing them."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self._inner.write(data)
        return len(data)

    def flush(self) -> None:
        self._inner.flush()


class ByteSink(io.RawIOBase):
    """A write-only stream whose bytes are collected and handed out by `drain`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def _ai_judges_wanted(options: ExportOptions) -> bool | None:
    """DatasetFilter.include_ai_judge for the options: None (the project's setting, as
    training counts them) for "all"."""
    if options.no_ai or options.source in ("human", "imported"):
        return False
    return True if options.source == "ai_judge" else None


class DatasetExport:
    """One export: validated options, the rows written, and the manifest that describes them."""

    def __init__(self, *, project: Project, options: ExportOptions) -> None:
        self.project = project
        self.options = options
        if options.format not in FORMAT_NAMES:
            raise ExportError(
                f"Unknown format {options.format!r}; one of {', '.join(FORMAT_NAMES)}."
            )
        if options.shape not in SHAPES:
            raise ExportError(f"Unknown shape {options.shape!r}; one of {', '.join(SHAPES)}.")
        self.format = get_format(options.format, options.shape)
        if options.source not in SOURCES:
            raise ExportError(f"Unknown source {options.source!r}; one of {', '.join(SOURCES)}.")
        if options.no_ai and options.source == "ai_judge":
            raise ExportError("Leaving AI judges out of an export of AI judges leaves nothing.")
        if options.split is not None and options.split not in SPLITS:
            raise ExportError(f"Unknown split {options.split!r}; one of {', '.join(SPLITS)}.")
        if options.min_agreement is not None and not 0 <= options.min_agreement <= 1:
            raise ExportError("The agreement threshold is a share between 0 and 1.")
        if self.format.rows == COMPARISON and (options.drop_ties or options.min_agreement):
            raise ExportError(
                "Dropping ties and the agreement threshold apply to pairs: use a preference "
                "format (trl, trl-conversational, hh, openai, or csv/parquet with shape trl)."
            )
        if options.since and options.until and options.since >= options.until:
            raise ExportError("The date range is empty: since must come before until.")
        # Split shares stay the selector's defaults: the ones the trainer uses.
        self.ctx = ExportContext(
            with_margin=project.ask_strength,
            real_usernames=options.real_usernames,
            strength_labels=project.strength_scale,
        )
        self.filter = DatasetFilter(
            include_human=options.source in ("all", "human"),
            include_imported=options.source in ("all", "imported"),
            include_ai_judge=_ai_judges_wanted(options),
            include_excluded=options.include_excluded,
            labeler_ids=self._labeler_ids(options.labelers),
            since=options.since,
            until=options.until,
        )
        self.file_name = f"{project.slug}-{self.format.shape}.{self.format.extension}"
        self.stats = DatasetStats()
        self.hasher = SnapshotHasher()
        self.counts: dict[str, Any] = {"rows": 0}
        self.data_sha256 = ""
        self.data_bytes = 0
        self.exported_at: datetime | None = None

    @staticmethod
    def _labeler_ids(usernames: list[str] | None) -> list[int] | None:
        if usernames is None:
            return None
        found = dict(
            get_user_model().objects.filter(username__in=usernames).values_list("username", "id")
        )
        missing = [u for u in usernames if u not in found]
        if missing:
            raise ExportError(f"Unknown labelers: {', '.join(missing)}.")
        return [found[u] for u in usernames]

    def write(self, stream: BinaryIO) -> Iterator[None]:
        """Write the data file to `stream`, pausing (yielding) every CHUNK rows so that a
        streaming response can send what was written so far."""
        counted = _HashingStream(stream)
        writer = self.format.writer(counted, self.ctx)
        rows = (
            self._comparison_records()
            if self.format.rows == COMPARISON
            else self._preference_records()
        )
        for n, record in enumerate(rows, 1):
            writer.write(record)
            if n % CHUNK == 0:
                yield
        writer.close()
        if self.format.rows == COMPARISON:
            # The snapshot is of the preference rows the same comparisons make.
            for _ in self._preference_rows_kept(drops={}):
                pass
        self.data_sha256 = counted.sha256.hexdigest()
        self.data_bytes = counted.size
        self.exported_at = timezone.now()

    def _preference_rows_kept(self, *, drops: dict[str, int]) -> Iterator[dict[str, Any]]:
        """The shared rule's rows, less those the options leave out (counted in `drops`); each
        kept row is hashed as the trainer hashes its snapshot."""
        opts, counts = self.options, drops
        for key in ("dropped_other_splits", "dropped_ties", "dropped_low_agreement"):
            counts.setdefault(key, 0)
        shares = {"validation_share": self.ctx.validation_share, "test_share": self.ctx.test_share}
        for row in preference_rows(self.project, self.filter, self.stats, **shares):
            if opts.split is not None and row["split"] != opts.split:
                counts["dropped_other_splits"] += 1
                continue
            if opts.drop_ties and row["tie"]:
                counts["dropped_ties"] += 1
                continue
            if opts.min_agreement is not None and row["agreement"] < opts.min_agreement:
                counts["dropped_low_agreement"] += 1
                continue
            self.hasher.add(row)
            yield row

    def _preference_records(self) -> Iterator[dict[str, Any]]:
        counts = self.counts
        counts.update(
            pairs=0, comparisons=0, ai_judge_comparisons=0, ties=0, by_split={s: 0 for s in SPLITS}
        )
        for row in self._preference_rows_kept(drops=counts):
            counts["rows"] += 1
            counts["pairs"] += 1
            counts["comparisons"] += row["n"]
            counts["ai_judge_comparisons"] += row["ai_judge_n"]
            counts["ties"] += int(row["tie"])
            counts["by_split"][row["split"]] += 1
            yield self.format.record(row, self.ctx)

    def _comparison_records(self) -> Iterator[dict[str, Any]]:
        counts = self.counts
        counts.update(
            pairs=0, comparisons=0, ai_judge_comparisons=0, by_split={s: 0 for s in SPLITS}
        )
        last_pair = None
        for row in comparison_rows(self.project, self.filter):
            record = self.format.record(row, self.ctx)
            if self.options.split is not None and record["split"] != self.options.split:
                continue
            counts["rows"] += 1
            counts["comparisons"] += 1
            counts["ai_judge_comparisons"] += record["source"] == AI_JUDGE
            counts["by_split"][record["split"]] += 1
            if row["pair_id"] != last_pair:
                counts["pairs"] += 1
                last_pair = row["pair_id"]
            yield record

    def manifest(self) -> dict[str, Any]:
        """What was exported, from what, how; call after `write` has run to the end."""
        opts = asdict(self.options)
        for key in ("since", "until"):
            opts[key] = opts[key].isoformat() if opts[key] else None
        opts.pop("format")
        if self.format.name not in ("csv", "parquet"):
            opts.pop("shape")
        project = self.project
        counts = dict(self.counts)
        counts["both_bad_left_out"] = self.stats.both_bad
        return {
            "prefloop_export": 1,
            "project": {"slug": project.slug, "name": project.name},
            "format": self.format.name,
            "shape": self.format.shape,
            "rows_are": self.format.rows,
            "file": self.file_name,
            "data_sha256": self.data_sha256,
            "data_bytes": self.data_bytes,
            "filters": opts,
            # How votes became p_chosen (annotate.quality.aggregation).
            "aggregation": self.stats.aggregation,
            "counts": counts,
            # The trainer's rule (annotate.splits.SnapshotHasher) over the preference rows
            # this export holds (or, for raw rows, that its comparisons make).
            "snapshot": {
                **self.hasher.result(aggregation=self.stats.aggregation),
                "validation_share": self.ctx.validation_share,
                "test_share": self.ctx.test_share,
            },
            "label_scale": {
                "choices": ["a", "b"]
                + (["tie"] if project.allow_tie else [])
                + (["both_bad"] if project.allow_both_bad else []),
                "allow_tie": project.allow_tie,
                "allow_both_bad": project.allow_both_bad,
                "ask_strength": project.ask_strength,
                "strength_labels": project.strength_scale if project.ask_strength else [],
                "reason_tags": list(project.reason_tags or []),
            },
            "instructions": project.instructions,
            "exported_at": self.exported_at.isoformat() if self.exported_at else None,
        }

    def card(self) -> str:
        return dataset_card(self.manifest(), instructions=self.project.instructions)

    def zip_chunks(self) -> Iterator[bytes]:
        """The export as a zip (data file, manifest.json, README.md), produced piece by piece.
        The manifest comes last because its counts are known only at the end."""
        sink = ByteSink()
        # Parquet is compressed already; deflating it again costs time and saves nothing.
        compression = (
            zipfile.ZIP_STORED if self.format.container == "parquet" else zipfile.ZIP_DEFLATED
        )
        with zipfile.ZipFile(sink, "w", compression=compression) as archive:
            with archive.open(self.file_name, "w", force_zip64=True) as entry:
                for _ in self.write(entry):
                    data = sink.drain()
                    if data:
                        yield data
            archive.writestr(
                "manifest.json", json.dumps(self.manifest(), indent=2, ensure_ascii=False)
            )
            archive.writestr("README.md", self.card())
        yield sink.drain()

    @property
    def zip_name(self) -> str:
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return f"{self.project.slug}-{self.format.shape}-{stamp}.{self.format.extension}.zip"


def export_for(*, project: Project, options: ExportOptions) -> DatasetExport | SetExport:
    """The export the options ask for: pairs (DatasetExport), or rankings and ratings in one
    of their formats or expanded to pairs (SetExport)."""
    if wants_sets(options):
        labeler_ids = DatasetExport._labeler_ids(options.labelers)
        return SetExport(project=project, options=options, labeler_ids=labeler_ids)
    if options.min_margin is not None or options.aspect is not None:
        raise ExportError("min_margin and aspect go with pairs_from rating-margin.")
    return DatasetExport(project=project, options=options)


def dataset_export(
    *,
    project: Project,
    options: ExportOptions,
    out: Path,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the export to `out` with `out`.manifest.json and the card `out`.README.md beside it,
    or, when `out` ends in .zip, one zip holding all three. Returns the manifest.
    `on_progress(rows written so far)` is called every few thousand rows.

    Files are written under a temporary name and renamed at the end, so that a failed export
    leaves no half-written file behind.
    """
    export = export_for(project=project, options=options)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    try:
        with open(partial, "wb") as fh:
            if out.suffix == ".zip":
                for chunk in export.zip_chunks():
                    fh.write(chunk)
                    if on_progress:
                        on_progress(export.counts["rows"])
            else:
                for _ in export.write(fh):
                    if on_progress:
                        on_progress(export.counts["rows"])
        manifest = export.manifest()
        if out.suffix != ".zip":
            manifest["file"] = out.name
            Path(f"{out}.manifest.json").write_text(
                json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
            )
            Path(f"{out}.README.md").write_text(
                export.card(manifest)
                if isinstance(export, SetExport)
                else dataset_card(manifest, instructions=project.instructions),
                encoding="utf-8",
            )
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return manifest
