"""Exports of rankings and ratings: the four shapes they are imported in (ultrafeedback,
helpsteer2, argilla, oasst) and TRL preference pairs expanded from them (`pairs_from`), with a
manifest and a dataset card. annotate/services/exports.py hands these options here.

Rows are raw and per rater, as stored: a labeler's judgments of a set under their pseudonym,
an imported row's under its import key. Swapped repeats never count; labelers staff excluded
count only when asked for. Each set's judgments are gathered before its rows are written, so
the export holds one project's sets in memory (ids and numbers, texts read per set).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Any, BinaryIO

from django.template.loader import render_to_string
from django.utils import timezone

from annotate.exporters import argilla, helpsteer2, oasst, pairs_from, ultrafeedback
from annotate.exporters.base import JsonlWriter
from annotate.exporters.card import _count_rows, _size_category, _yaml_str
from annotate.exporters.raw import labeler_pseudonym
from annotate.exporters.sets import RaterJudgment, SetBundle
from annotate.importers.sets import rater_of
from annotate.models import JudgmentSource as Source
from annotate.models import Membership, Project, Ranking, Rating, Response, ResponseSet
from annotate.selectors.rankings import project_aspects
from annotate.splits import SPLITS, split_of

SET_FORMATS = {
    "ultrafeedback": ultrafeedback,
    "helpsteer2": helpsteer2,
    "argilla": argilla,
    "oasst": oasst,
}
PAIR_FORMATS = ("trl", "trl-conversational")
CARD = "annotate/dataset_card_sets.md"


def wants_sets(options: Any) -> bool:
    """Whether the options ask for rankings and ratings rather than pairs."""
    return options.format in SET_FORMATS or options.pairs_from is not None


def _error(message: str) -> Exception:
    from annotate.services.exports import ExportError  # the caller's error, defined there

    return ExportError(message)


class SetExport:
    """One export of a project's rankings and ratings; the interface of DatasetExport."""

    def __init__(self, *, project: Project, options: Any, labeler_ids: list[int] | None) -> None:
        self.project, self.options = project, options
        if options.pairs_from is not None:
            if options.pairs_from not in pairs_from.CHOICES:
                raise _error(
                    f"Unknown pairs_from {options.pairs_from!r}; one of "
                    f"{', '.join(pairs_from.CHOICES)}."
                )
            if options.format not in PAIR_FORMATS:
                raise _error("pairs_from writes TRL pairs: use format trl or trl-conversational.")
        elif options.min_margin is not None or options.aspect is not None:
            raise _error("min_margin and aspect go with pairs_from rating-margin.")
        if options.pairs_from != "rating-margin" and (options.min_margin or options.aspect):
            raise _error("min_margin and aspect go with pairs_from rating-margin.")
        if options.min_margin is not None and not (
            math.isfinite(options.min_margin) and options.min_margin > 0
        ):
            # A margin of 0 or less would make pairs of equally scored responses, both ways.
            raise _error("min_margin is the least score difference: a number above 0.")
        names = [a.name for a in project_aspects(project)]
        if options.aspect is not None and options.aspect not in names:
            raise _error(f"This project has no aspect {options.aspect!r} ({', '.join(names)}).")
        if options.drop_ties or options.min_agreement is not None:
            raise _error("Dropping ties and the agreement threshold apply to pairs, not sets.")
        if options.source not in ("all", "human", "imported"):
            raise _error(
                "Rankings and ratings come from people or imports: source all, human or imported."
            )
        self.labeler_ids = labeler_ids
        self.min_margin = 1.0 if options.min_margin is None else options.min_margin
        self.file_name = f"{project.slug}-{self._shape}.jsonl"
        self.counts: dict[str, Any] = {"rows": 0}
        self.data_sha256 = ""
        self.data_bytes = 0
        self.exported_at: datetime | None = None

    @property
    def _shape(self) -> str:
        return (
            f"pairs-{self.options.pairs_from}" if self.options.pairs_from else self.options.format
        )

    # -- reading -----------------------------------------------------------------------------

    def _wanted(self, row: dict[str, Any], excluded: set[int]) -> bool:
        opts = self.options
        if row["is_repeat"]:
            return False
        human = row["source"] == Source.HUMAN
        if (opts.source == "human" and not human) or (opts.source == "imported" and human):
            return False
        if human and row["labeler_id"] in excluded and not opts.include_excluded:
            return False
        if self.labeler_ids is not None and row["labeler_id"] not in self.labeler_ids:
            return False
        if opts.since and row["created_at"] < opts.since:
            return False
        return not (opts.until and row["created_at"] >= opts.until)

    def _rater(self, row: dict[str, Any], names: dict[int, str]) -> str:
        if row["labeler_id"] is None:
            return f"import:{rater_of(row['import_key'])}"
        if self.options.real_usernames:
            return row["labeler__username"]
        if row["labeler_id"] not in names:
            names[row["labeler_id"]] = labeler_pseudonym(row["labeler_id"])
        return names[row["labeler_id"]]

    def bundles(self) -> Iterator[SetBundle]:
        """The project's judged sets, by id, each with its raters' judgments."""
        project = self.project
        excluded = set(
            Membership.objects.filter(project=project, excluded=True).values_list(
                "user_id", flat=True
            )
        )
        fields = (
            "id",
            "response_set_id",
            "labeler_id",
            "labeler__username",
            "source",
            "import_key",
            "is_repeat",
            "created_at",
        )
        judgments: dict[int, dict[str, RaterJudgment]] = {}
        names: dict[int, str] = {}

        def judgment_of(row: dict[str, Any]) -> RaterJudgment:
            rater = self._rater(row, names)
            by_rater = judgments.setdefault(row["response_set_id"], {})
            return by_rater.setdefault(rater, RaterJudgment(rater=rater, source=row["source"]))

        for row in (
            Ranking.objects.filter(project=project)
            .order_by("id")
            .values(*fields, "groups", "all_bad")
        ):
            if self._wanted(row, excluded):
                judgment = judgment_of(row)
                judgment.groups = [list(g) for g in row["groups"]]
                judgment.all_bad, judgment.ranking_id = row["all_bad"], row["id"]
        for row in (
            Rating.objects.filter(project=project)
            .order_by("id")
            .values(*fields, "response_id", "aspect", "value")
        ):
            if self._wanted(row, excluded):
                judgment_of(row).ratings[(row["response_id"], row["aspect"])] = row["value"]
        sets = ResponseSet.objects.filter(pk__in=list(judgments)).select_related("prompt")
        for response_set in sets.order_by("id").iterator(chunk_size=500):
            prompt = response_set.prompt
            split = split_of(prompt.content_hash)
            if self.options.split is not None and split != self.options.split:
                self.counts["dropped_other_splits"] += 1
                continue
            responses = Response.objects.filter(pk__in=response_set.response_ids)
            yield SetBundle(
                set_id=response_set.pk,
                prompt=prompt.messages,
                split=split,
                responses={
                    i: (t, m) for i, t, m in responses.values_list("id", "text", "model_name")
                },
                judgments=list(judgments[response_set.pk].values()),
            )

    def judgment_rows(self, *, at_most: int) -> int:
        """The Ranking and Rating rows the export reads (swapped repeats aside, before the
        other filters), counted no further than `at_most`: whether the export is large."""
        rankings = Ranking.objects.filter(project=self.project, is_repeat=False).order_by()
        counted = rankings[:at_most].count()
        if counted < at_most:
            ratings = Rating.objects.filter(project=self.project, is_repeat=False).order_by()
            counted += ratings[: at_most - counted].count()
        return counted

    def sets_judged(self) -> int:
        """How many of the project's sets hold a judgment: about how many rows a set shape
        writes (for a background job's progress; pairs expanded from them are more)."""
        ids: set[int] = set()
        for model in (Ranking, Rating):
            judged = model.objects.filter(project=self.project, is_repeat=False).order_by()
            ids.update(judged.values_list("response_set_id", flat=True).distinct())
        return len(ids)

    # -- writing -----------------------------------------------------------------------------

    def records(self) -> Iterator[dict[str, Any]]:
        opts, counts = self.options, self.counts
        counts.update(
            sets=0, rankings=0, ratings=0, dropped_other_splits=0, by_split={s: 0 for s in SPLITS}
        )
        for bundle in self.bundles():
            counts["sets"] += 1
            counts["rankings"] += sum(j.groups is not None for j in bundle.judgments)
            counts["ratings"] += sum(len(j.ratings) for j in bundle.judgments)
            if opts.pairs_from:
                rows = pairs_from.records(
                    bundle,
                    how=opts.pairs_from,
                    conversational=opts.format == "trl-conversational",
                    min_margin=self.min_margin,
                    aspect=opts.aspect,
                )
            else:
                rows = SET_FORMATS[opts.format].records(bundle)
            for record in rows:
                counts["rows"] += 1
                counts["by_split"][bundle.split] += 1
                yield record

    def write(self, stream: BinaryIO) -> Iterator[None]:
        digest, size = hashlib.sha256(), 0
        buffer = io.BytesIO()
        writer = JsonlWriter(buffer)
        for n, record in enumerate(self.records(), 1):
            writer.write(record)
            data = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            digest.update(data)
            size += len(data)
            stream.write(data)
            if n % 2000 == 0:
                yield
        self.data_sha256, self.data_bytes = digest.hexdigest(), size
        self.exported_at = timezone.now()

    def manifest(self) -> dict[str, Any]:
        opts = asdict(self.options)
        for key in ("since", "until"):
            opts[key] = opts[key].isoformat() if opts[key] else None
        for key in ("format", "shape", "drop_ties", "min_agreement", "no_ai"):
            opts.pop(key, None)
        expansion = None
        if self.options.pairs_from:
            expansion = {
                "pairs_from": self.options.pairs_from,
                "min_margin": self.min_margin
                if self.options.pairs_from == "rating-margin"
                else None,
                "aspect": self.options.aspect,
            }
        return {
            "prefloop_export": 1,
            "project": {"slug": self.project.slug, "name": self.project.name},
            "format": self.options.format,
            "shape": self._shape,
            "rows_are": "pairs" if expansion else "sets",
            "file": self.file_name,
            "data_sha256": self.data_sha256,
            "data_bytes": self.data_bytes,
            "filters": opts,
            "expansion": expansion,
            "task_kind": self.project.task_kind,
            "aspects": [a.as_dict() for a in project_aspects(self.project)],
            "counts": dict(self.counts),
            "instructions": self.project.instructions,
            "exported_at": self.exported_at.isoformat() if self.exported_at else None,
        }

    def card(self, manifest: dict[str, Any] | None = None) -> str:
        return set_card(manifest or self.manifest(), instructions=self.project.instructions)

    def zip_chunks(self) -> Iterator[bytes]:
        sink = io.BytesIO()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            with archive.open(self.file_name, "w", force_zip64=True) as entry:
                for _ in self.write(entry):
                    pass
            archive.writestr(
                "manifest.json", json.dumps(self.manifest(), indent=2, ensure_ascii=False)
            )
            archive.writestr("README.md", self.card())
        yield sink.getvalue()

    @property
    def zip_name(self) -> str:
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return f"{self.project.slug}-{self._shape}-{stamp}.jsonl.zip"


def set_card(manifest: dict[str, Any], *, instructions: str) -> str:
    """README.md of an export of rankings and ratings (templates/annotate/dataset_card_sets.md)."""
    return render_to_string(
        CARD,
        {
            "manifest": manifest,
            "pretty_name_yaml": _yaml_str(manifest["project"]["name"] + " rankings and ratings"),
            "data_file_yaml": _yaml_str(manifest["file"]),
            "size_category": _size_category(manifest["counts"]["rows"]),
            "instructions_quoted": "\n".join(
                "> " + line if line else ">" for line in instructions.splitlines()
            ),
            "counts": _count_rows(manifest["counts"]),
            "filters_json": json.dumps(manifest["filters"], indent=2, ensure_ascii=False),
        },
    )
