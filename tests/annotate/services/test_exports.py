"""Dataset export through the service and the export_dataset command: every format's rows,
the filters, the manifest and the dataset card."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command

from annotate.exporters import parquet as parquet_module
from annotate.exporters.raw import labeler_pseudonym
from annotate.selectors.dataset import preference_rows
from annotate.services.exports import ExportError, ExportOptions, dataset_export, export_options
from annotate.splits import snapshot, split_of
from rewardtrain.selectors.runs import training_data
from tests.annotate.export_data import judged_project


@pytest.fixture
def judged(project, labeler):
    return judged_project(project, labeler)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def export(judged, tmp_path, name="out.jsonl", **options):
    out = tmp_path / name
    manifest = dataset_export(project=judged.project, options=ExportOptions(**options), out=out)
    return out, manifest


def test_trl_rows_core_keys_first_with_votes_and_margin(judged, tmp_path):
    out, manifest = export(judged, tmp_path, format="trl")
    rows = read_jsonl(out)
    # Both-bad and excluded-only pairs are left out; the five others remain, in pair order.
    assert [r["pair_id"] for r in rows] == [
        judged.majority.id,
        judged.unanimous.id,
        judged.tie.id,
        judged.imported.id,
        judged.conversation.id,
    ]
    first = rows[0]
    assert list(first)[:4] == ["prompt", "chosen", "rejected", "margin"]
    assert first["prompt"] == "What is the capital of France?"
    assert (first["chosen"], first["rejected"]) == ("Paris.", "Lyon.")
    assert (first["votes_chosen"], first["votes_rejected"]) == (2, 1)
    assert first["agreement"] == pytest.approx(2 / 3, abs=1e-6)
    assert first["p_chosen"] == pytest.approx(2 / 3, abs=1e-6)
    assert first["margin"] == 2.0  # mean strength of the two winning votes (3 and 1)
    unanimous = rows[1]
    assert (unanimous["chosen"], unanimous["rejected"]) == ("Hi there!", "Go away.")
    assert (unanimous["votes_chosen"], unanimous["votes_rejected"]) == (2, 0)
    assert unanimous["margin"] == 3.0
    tie = rows[2]
    assert tie["tie"] is True and tie["margin"] == 0.0 and tie["votes_tie"] == 1
    assert rows[3]["margin"] == 0.0  # imported without strength
    # A conversation keeps every turn, as an HH-style transcript (system text first).
    assert rows[4]["prompt"] == (
        "Be brief.\n\nHuman: Hi.\n\nAssistant: Hello.\n\nHuman: How are you?\n\nAssistant:"
    )
    assert all(
        r["split"] == split_of(judged.project.prompts.get(pairs__id=r["pair_id"]).content_hash)
        for r in rows
    )

    assert manifest["counts"]["rows"] == 5
    assert manifest["counts"]["both_bad_left_out"] == 1
    assert manifest["counts"]["ties"] == 1
    assert manifest["counts"]["comparisons"] == 3 + 2 + 1 + 1 + 1


def test_no_margin_when_the_project_does_not_ask_strength(judged, tmp_path):
    judged.project.ask_strength = False
    judged.project.save()
    out, _ = export(judged, tmp_path, format="trl")
    assert all("margin" not in r for r in read_jsonl(out))


def test_manifest_beside_the_file_has_the_trainers_snapshot_hash(judged, tmp_path):
    out, manifest = export(judged, tmp_path, format="trl")
    on_disk = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
    assert on_disk == manifest
    trainer = training_data(project=judged.project).snapshot()
    assert manifest["snapshot"]["content_hash"] == trainer["content_hash"]
    assert manifest["snapshot"]["counts"] == trainer["counts"]
    assert manifest["project"] == {"slug": "demo", "name": "Demo"}
    assert manifest["file"] == "out.jsonl"
    assert manifest["filters"]["drop_ties"] is False
    assert manifest["exported_at"]
    import hashlib

    assert manifest["data_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_dataset_card_is_hugging_face_style(judged, tmp_path):
    export(judged, tmp_path, format="trl")
    card = (tmp_path / "out.jsonl.README.md").read_text()
    header, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    assert 'pretty_name: "Demo preferences"' in header
    assert "size_categories:\n- n<1K" in header
    assert 'path: "out.jsonl"' in header
    assert "> Pick the more helpful, honest and harmless response." in body
    assert "1 = slightly better, 2 = better, 3 = clearly better, 4 = much better" in body
    assert "| rows | 5 |" in body
    assert "both bad" in body.lower() and "p(A) = " in body
    assert judged_hash(judged) in body


def judged_hash(judged):
    return snapshot(list(preference_rows(judged.project)))["content_hash"]


def test_trl_conversational_hh_and_openai_shapes(judged, tmp_path):
    conv, _ = export(judged, tmp_path, "conv.jsonl", format="trl-conversational")
    row = read_jsonl(conv)[4]
    assert row["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert row["prompt"][-1] == {"role": "user", "content": "How are you?"}
    assert row["chosen"] == [{"role": "assistant", "content": "Fine, thanks."}]
    assert row["rejected"] == [{"role": "assistant", "content": "Why ask?"}]

    hh, _ = export(judged, tmp_path, "hh.jsonl", format="hh")
    first = read_jsonl(hh)[0]
    assert first["chosen"] == "\n\nHuman: What is the capital of France?\n\nAssistant: Paris."
    assert first["rejected"] == "\n\nHuman: What is the capital of France?\n\nAssistant: Lyon."
    assert first["votes_chosen"] == 2

    oa, _ = export(judged, tmp_path, "oa.jsonl", format="openai")
    rows = read_jsonl(oa)
    assert set(rows[0]) == {"input", "preferred_output", "non_preferred_output"}
    assert rows[0]["input"] == {
        "messages": [{"role": "user", "content": "What is the capital of France?"}]
    }
    assert rows[0]["preferred_output"] == [{"role": "assistant", "content": "Paris."}]
    assert rows[0]["non_preferred_output"] == [{"role": "assistant", "content": "Lyon."}]
    assert len(rows[4]["input"]["messages"]) == 4


def test_raw_has_every_counted_comparison_with_pseudonymous_labelers(judged, tmp_path):
    out, manifest = export(judged, tmp_path, format="raw")
    rows = read_jsonl(out)
    # 3 + 2 + 1 + 2 (both bad) + 1 imported + 1: the repeat and the excluded labeler's are out.
    assert len(rows) == 10
    assert manifest["counts"]["comparisons"] == 10 and manifest["counts"]["pairs"] == 6
    first = rows[0]
    alice = judged.users["alice"]
    assert first["labeler"] == labeler_pseudonym(alice.id)
    assert first["labeler"].startswith("labeler-") and "alice" not in json.dumps(rows)
    assert first["choice"] == "a" and first["strength"] == 3
    assert first["strength_label"] == "clearly better"
    assert first["left"] == "b" and first["time_spent_ms"] == 4200
    assert first["reasons"] == ["accurate"] and first["comment"] == "Lyon is wrong"
    assert first["source"] == "human" and first["created_at"].startswith("2024-05-01T12:00")
    assert first["response_a"] == "Paris." and first["prompt"][0]["content"].startswith("What")
    imported = next(r for r in rows if r["source"] == "import")
    assert imported["labeler"] is None and imported["import_file"] == "old.jsonl"
    # The snapshot is still the trainer's, of the pairs these comparisons make.
    assert manifest["snapshot"]["content_hash"] == judged_hash(judged)

    named, _ = export(judged, tmp_path, "named.jsonl", format="raw", real_usernames=True)
    assert read_jsonl(named)[0]["labeler"] == "alice"


def test_pseudonym_is_stable_and_keyed_by_secret(settings, db):
    first = labeler_pseudonym(42)
    assert first == labeler_pseudonym(42) != labeler_pseudonym(43)
    settings.SECRET_KEY = "another-secret"
    assert labeler_pseudonym(42) != first


def pair_ids(path):
    return [r["pair_id"] for r in read_jsonl(path)]


def test_filters(judged, tmp_path):
    j = judged
    assert j.tie.id not in pair_ids(export(j, tmp_path, "a.jsonl", format="trl", drop_ties=True)[0])
    kept = pair_ids(export(j, tmp_path, "b.jsonl", format="trl", min_agreement=0.9)[0])
    assert j.majority.id not in kept and j.unanimous.id in kept
    human = pair_ids(export(j, tmp_path, "c.jsonl", format="trl", source="human")[0])
    assert j.imported.id not in human and j.majority.id in human
    imported = pair_ids(export(j, tmp_path, "d.jsonl", format="trl", source="imported")[0])
    assert imported == [j.imported.id]
    with_excluded = pair_ids(export(j, tmp_path, "e.jsonl", format="trl", include_excluded=True)[0])
    assert j.excluded_only.id in with_excluded

    # Only bob's votes: the majority pair becomes unanimous for a.
    out, manifest = export(j, tmp_path, "f.jsonl", **_opts(format="trl", labelers="bob"))
    rows = read_jsonl(out)
    assert [r["pair_id"] for r in rows] == [j.majority.id, j.unanimous.id]
    assert rows[0]["votes_chosen"] == 1 and rows[0]["agreement"] == 1.0
    assert manifest["filters"]["labelers"] == ["bob"]

    # Dates: the day of May 2nd only (until is inclusive of its day).
    out, _ = export(
        j, tmp_path, "g.jsonl", **_opts(format="raw", since="2024-05-02", until="2024-05-02")
    )
    assert {r["created_at"][:10] for r in read_jsonl(out)} == {"2024-05-02"}
    assert len(read_jsonl(out)) == 2

    for split in ("train", "validation", "test"):
        out, manifest = export(j, tmp_path, f"{split}.jsonl", format="trl", split=split)
        assert {r["split"] for r in read_jsonl(out)} <= {split}
        assert manifest["counts"]["rows"] == manifest["counts"]["by_split"][split]


def _opts(**text):
    options = export_options(**text)
    return {k: v for k, v in vars(options).items()}


def test_bad_options_are_refused(judged, tmp_path):
    with pytest.raises(ExportError, match="apply to pairs"):
        export(judged, tmp_path, format="raw", drop_ties=True)
    with pytest.raises(ExportError, match="Unknown labelers: nobody"):
        export(judged, tmp_path, **_opts(format="trl", labelers="bob,nobody"))
    with pytest.raises(ExportError, match="between 0 and 1"):
        export(judged, tmp_path, format="trl", min_agreement=2)
    with pytest.raises(ExportError, match="Not a date"):
        export_options(format="trl", since="May 2nd")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_csv_in_both_shapes(judged, tmp_path):
    out, _ = export(judged, tmp_path, "trl.csv", format="csv")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert list(rows[0])[:4] == ["prompt", "chosen", "rejected", "margin"]
    assert rows[0]["chosen"] == "Paris." and rows[0]["votes_chosen"] == "2"
    assert rows[4]["prompt"].startswith("Be brief.\n\nHuman: Hi.")  # newlines survive quoting
    assert rows[2]["tie"] == "true"

    out, manifest = export(judged, tmp_path, "raw.csv", format="csv", shape="raw")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert len(rows) == 10 and manifest["shape"] == "raw"
    assert json.loads(rows[0]["prompt"])[0]["role"] == "user"
    assert json.loads(rows[0]["reasons"]) == ["accurate"]
    assert rows[-1]["strength"] == "2"


def test_parquet_in_both_shapes_in_row_groups(judged, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    monkeypatch.setattr(parquet_module, "ROW_GROUP", 2)
    out, _ = export(judged, tmp_path, "trl.parquet", format="parquet")
    table = pq.read_table(out)
    assert table.num_rows == 5 and pq.ParquetFile(out).num_row_groups == 3
    assert table.column_names[:4] == ["prompt", "chosen", "rejected", "margin"]
    assert table.to_pylist()[0]["chosen"] == "Paris."

    out, _ = export(judged, tmp_path, "raw.parquet", format="parquet", shape="raw")
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 10
    assert rows[0]["prompt"] == [{"role": "user", "content": "What is the capital of France?"}]
    assert rows[0]["created_at"].year == 2024 and rows[0]["reasons"] == ["accurate"]


def test_zip_out_holds_data_manifest_and_card(judged, tmp_path):
    out, manifest = export(judged, tmp_path, "bundle.zip", format="trl")
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["demo-trl.jsonl", "manifest.json", "README.md"]
        assert json.loads(archive.read("manifest.json")) == manifest
        lines = archive.read("demo-trl.jsonl").decode().splitlines()
    assert len(lines) == manifest["counts"]["rows"] == 5


def test_command(judged, tmp_path):
    out = tmp_path / "data" / "demo.jsonl"
    stdout = io.StringIO()
    call_command(
        "export_dataset",
        "--project",
        "demo",
        "--format",
        "trl",
        "--out",
        str(out),
        "--drop-ties",
        "--labelers",
        "alice,bob",
        "--until",
        "2024-05-03",
        stdout=stdout,
    )
    assert "Wrote 2 rows" in stdout.getvalue()
    manifest = json.loads(out.with_name("demo.jsonl.manifest.json").read_text())
    assert manifest["filters"]["labelers"] == ["alice", "bob"]
    assert manifest["filters"]["until"].startswith("2024-05-04T00:00")
    assert manifest["counts"]["dropped_ties"] == 1
    with pytest.raises(CommandError, match="No project"):
        call_command("export_dataset", "--project", "nope", "--format", "trl", "--out", str(out))
    with pytest.raises(CommandError, match="apply to pairs"):
        call_command(
            "export_dataset",
            "--project",
            "demo",
            "--format",
            "raw",
            "--out",
            str(out),
            "--min-agreement",
            "0.5",
        )


FORMULAS = {
    "comment": '=HYPERLINK("http://evil.example/","x")',
    "prompt": "+1+1 is what?",
    "a": "-2 is less than zero",
    "b": "@SUM(A1:A9)",
}


def test_csv_neutralises_formulas_while_jsonl_and_parquet_keep_text(project, labeler, tmp_path):
    import pyarrow.parquet as pq

    from tests.annotate.export_data import judge
    from tests.factories import make_pair

    pair = make_pair(project, FORMULAS["prompt"], a=FORMULAS["a"], b=FORMULAS["b"])
    judge(pair, labeler, "a", comment=FORMULAS["comment"], reasons=[])
    tabbed = make_pair(project, "\tindented", a="\rcarriage", b="plain = fine")
    judge(tabbed, labeler, "b", comment="", reasons=[])

    out, _ = export_project(project, tmp_path, "raw.csv", format="csv", shape="raw")
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8"), newline="")))
    assert rows[0]["comment"] == "'" + FORMULAS["comment"]
    assert (rows[0]["response_a"], rows[0]["response_b"]) == (
        "'" + FORMULAS["a"],
        "'" + FORMULAS["b"],
    )
    assert rows[1]["response_a"] == "'\rcarriage" and rows[1]["response_b"] == "plain = fine"
    out, _ = export_project(project, tmp_path, "trl.csv", format="csv")
    trl = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8"), newline="")))
    assert trl[0]["prompt"] == "'" + FORMULAS["prompt"] and trl[1]["prompt"] == "'\tindented"

    out, _ = export_project(project, tmp_path, "raw.jsonl", format="raw")
    first = read_jsonl(out)[0]
    assert first["comment"] == FORMULAS["comment"] and first["response_b"] == FORMULAS["b"]
    out, _ = export_project(project, tmp_path, "raw.parquet", format="parquet", shape="raw")
    table = pq.read_table(out).to_pylist()
    assert table[0]["comment"] == FORMULAS["comment"] and table[1]["response_a"] == "\rcarriage"


def export_project(project, tmp_path, name, **options):
    out = tmp_path / name
    manifest = dataset_export(project=project, options=ExportOptions(**options), out=out)
    return out, manifest
