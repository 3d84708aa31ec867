"""Exports read by the real clients: Hugging Face `datasets`, TRL's RewardTrainer, and the
import service (a round trip)."""

from __future__ import annotations

import json

import pytest

from annotate.services.exports import ExportOptions, dataset_export
from tests.annotate.export_data import judged_project
from tests.factories import ProjectFactory


@pytest.fixture
def judged(project, labeler):
    return judged_project(project, labeler)


def export(project, path, **options):
    return dataset_export(project=project, options=ExportOptions(**options), out=path)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_datasets_reads_every_format(judged, tmp_path):
    from datasets import Dataset, load_dataset

    for fmt in ("trl", "trl-conversational", "hh", "openai", "raw"):
        out = tmp_path / f"{fmt}.jsonl"
        manifest = export(judged.project, out, format=fmt)
        ds = load_dataset("json", data_files=str(out), split="train")
        assert ds.num_rows == manifest["counts"]["rows"], fmt
    ds = load_dataset("json", data_files=str(tmp_path / "trl.jsonl"), split="train")
    assert ds.column_names[:4] == ["prompt", "chosen", "rejected", "margin"]
    assert ds[0]["chosen"] == "Paris." and ds[0]["votes_chosen"] == 2

    for shape, rows in (("trl", 5), ("raw", 10)):
        out = tmp_path / f"{shape}.parquet"
        export(judged.project, out, format="parquet", shape=shape)
        ds = Dataset.from_parquet(str(out))
        assert ds.num_rows == rows
    assert Dataset.from_parquet(str(tmp_path / "trl.parquet"))[0]["rejected"] == "Lyon."

    out = tmp_path / "trl.csv"
    export(judged.project, out, format="csv")
    ds = load_dataset("csv", data_files=str(out), split="train")
    assert ds.num_rows == 5 and ds[0]["chosen"] == "Paris."


def core(rows):
    return sorted((json.dumps(r["prompt"]), r["chosen"], r["rejected"]) for r in rows)


@pytest.mark.parametrize("fmt", ["trl", "trl-conversational"])
def test_round_trip_through_import_reproduces_pairs_and_preferences(
    project, labeler, tmp_path, fmt
):
    from annotate.services.imports import import_file

    # TRL's text prompt holds a system message as the text before the first "Human:", which
    # the importer reads back as the system message.
    judged = judged_project(project, labeler, system=True)
    first = tmp_path / "first.jsonl"
    # Ties are left out: TRL's format has no tie, so an imported row is a preference.
    export(judged.project, first, format=fmt, drop_ties=True)
    copy = ProjectFactory(slug="copy")
    result = import_file(project=copy, path=first)
    original = read_jsonl(first)
    assert result.pairs_created == len(original) == 4
    second = tmp_path / "second.jsonl"
    export(copy, second, format=fmt)
    assert core(read_jsonl(second)) == core(original)
    # Importing the same file again adds nothing.
    import_file(project=copy, path=first)
    assert copy.pairs.count() == 4


def test_trl_reward_trainer_trains_one_step_on_the_export(judged, tmp_path):
    trl = pytest.importorskip("trl", reason="TRL is a dev extra: pip install -e '.[dev]'")
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tests.rewardtrain.tiny import make_bert

    out = tmp_path / "trl.jsonl"
    export(judged.project, out, format="trl")
    backbone = make_bert(tmp_path / "bert")
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    dataset = load_dataset("json", data_files=str(out), split="train")
    args = trl.RewardConfig(
        output_dir=str(tmp_path / "trl-out"),
        max_steps=1,
        per_device_train_batch_size=4,
        max_length=64,
        eos_token="[SEP]",  # a BERT tokenizer has no EOS token of its own
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
    )
    trainer = trl.RewardTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer
    )
    result = trainer.train()
    assert result.global_step == 1
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 1 and losses[0] > 0
