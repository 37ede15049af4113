"""Issue 14: training on an analyst's own labels: a hint when the config's labels do not fit,
--labels-from-data and configs/custom.yaml (no inherited PLOVER dev/test/selection files), models with
only some heads (absent heads leave no trace in the directory, the records, the page, `evaluate` and the
ONNX graph), --init-from, and the small-data schedule with early stopping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import REPO, tiny_config, write_jsonl
from eventcoder.serve.cli import main

NAMES = ["Germany", "the rebels", "Kenya", "the police", "Russia", "the union", "Belarus", "the army"]
VERBS = {"STATEMENT": ("criticized", "SOURCE", "TARGET", "AGAINST"),
         "CLASH": ("attacked", "SOURCE", "TARGET", "AGAINST"),
         "TALKS": ("met", "RECIPROCAL", "RECIPROCAL", "FAVOR")}


def own_rows(fields: set[str]) -> list[dict[str, Any]]:
    """Sentences "A criticized/attacked/met B on Monday." with the requested annotations: event_type;
    actors (roles SOURCE/TARGET/RECIPROCAL); stance (toward B; a free-text target without actors)."""
    rows = []
    for i, a in enumerate(NAMES):
        for label, (verb, role_a, role_b, stance) in VERBS.items():
            b = NAMES[(i + 3) % len(NAMES)]
            text = f"{a} {verb} {b} on Monday."
            row: dict[str, Any] = {"text": text}
            if "event_type" in fields:
                row["event_type"] = label
            if "actors" in fields:
                start = len(a) + len(verb) + 2
                row["actors"] = [{"start": 0, "end": len(a), "role": role_a},
                                 {"start": start, "end": start + len(b), "role": role_b}]
            if "stance" in fields:
                row["stance"] = [{"target": b, "stance": stance}]
            rows.append(row)
    return rows


def _train(args: list[str], base: Path) -> int:
    return main(["train", "--base-model", str(base), "--set", "max_length=40", "--set", "batch_size=8",
                 "--set", "calibration_sentences=16", *args])


def test_unknown_label_error_says_how_to_train_on_your_own_labels(tiny_base_model: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "mine.jsonl", own_rows({"event_type"}))
    code = _train(["--config", str(REPO / "configs" / "default.yaml"), "--train-file", str(data),
                   "--output-dir", str(tmp_path / "m")], tiny_base_model)
    err = capsys.readouterr().err
    assert code == 2 and "unknown label 'STATEMENT' (the config allows AGREE" in err
    assert "add --labels-from-data, or use --config configs/custom.yaml" in err
    assert "epoch 1" not in err and not (tmp_path / "m").exists()


def test_labels_from_data_trains_without_our_dev_test_and_selection_files(tiny_base_model: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "mine.jsonl", own_rows({"event_type", "actors"}))
    out = tmp_path / "mine"
    code = _train(["--config", str(REPO / "configs" / "default.yaml"), "--train-file", str(data), "--labels-from-data",
                   "--output-dir", str(out), "--epochs", "1", "--no-onnx"], tiny_base_model)
    assert code == 0, capsys.readouterr().err
    saved = (out / "training_config.yaml").read_text()
    for setting in ("test_file", "selection_file", "dev_file"):
        assert f"{setting}: ''" in saved
    assert "evaluate_epochs: []" in saved and "epochs: 1\n" in saved  # the config's PLOVER schedule is dropped too
    metadata = json.loads((out / "eventcoder.json").read_text())
    assert metadata["name"] == "mine"
    assert list(metadata["heads"]["event_type"]["id2label"].values()) == ["CLASH", "STATEMENT", "TALKS"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert "held out of" in metrics["dev_source"] and "test" not in metrics and "selection" not in metrics


def test_the_custom_config_takes_every_label_from_the_data_and_no_test_or_selection_file() -> None:
    from eventcoder.training.config import TrainConfig

    config = TrainConfig.from_yaml(REPO / "configs" / "custom.yaml")
    assert config.test_file == config.selection_file == config.dev_file == ""
    assert all(not labels for labels in config.labels.model_dump().values())
    assert config.epochs is None and config.learning_rate is None and config.patience is None


def test_data_without_any_label_stops_before_training(tiny_base_model: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "bare.jsonl", own_rows(set()))
    code = _train(["--config", str(REPO / "configs" / "custom.yaml"), "--train-file", str(data),
                   "--output-dir", str(tmp_path / "m")], tiny_base_model)
    err = capsys.readouterr().err
    assert code == 2 and "nothing to learn" in err and "epoch 1" not in err


# ------------------------------------------------------------------ models with only some heads
SUBSETS = {
    # name: (annotated fields, heads of the model)
    "events": ({"event_type"}, {"event_type"}),
    "actors": ({"actors"}, {"actors"}),
    # stance without actors: free-text targets (the stance head reads a named target's span, the pair
    # pass the others); the model codes stance toward the targets a caller names
    "stance": ({"stance"}, {"stance"}),
    "events+actors": ({"event_type", "actors"}, {"event_type", "actors"}),
}
RECORD_KEYS = {"event_type": {"event_type", "event_score", "event_scores", "mode", "mode_score"},
               "actors": {"actors"}, "stance": {"stance"}}
LOGITS = {"event_type": "event_logits", "actors": "bio_logits"}


@pytest.fixture(scope="module", params=sorted(SUBSETS))
def subset_model(request: pytest.FixtureRequest, tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[str, Path, Path]:
    fields, _ = SUBSETS[request.param]
    directory = tmp_path_factory.mktemp("subset")
    data = write_jsonl(directory / "mine.jsonl", own_rows(fields))
    out = directory / "model"
    code = _train(["--config", str(REPO / "configs" / "custom.yaml"), "--train-file", str(data),
                   "--output-dir", str(out), "--epochs", "3", "--set", "dev_fraction=0.25"], tiny_base_model)
    assert code == 0
    return request.param, data, out


def test_an_absent_head_leaves_no_trace_in_the_model_directory(subset_model: tuple[str, Path, Path]) -> None:
    import onnx
    from safetensors import safe_open

    name, _, out = subset_model
    heads = SUBSETS[name][1]
    metadata = json.loads((out / "eventcoder.json").read_text())
    assert set(metadata["heads"]) == heads
    with safe_open(str(out / "model.safetensors"), framework="np") as handle:
        assert {key.split(".")[1] for key in handle.keys() if key.startswith("heads.")} == heads
    for graph in ("model.onnx", "model.int8.onnx"):
        outputs = {o.name for o in onnx.load(str(out / graph)).graph.output}
        assert outputs == {"hidden", "pooled"} | {LOGITS[h] for h in heads if h in LOGITS}, graph
    assert "stance" in heads or "stance" not in (out / "README.md").read_text().split("## Labels")[1]


def test_records_score_and_evaluate_have_only_the_present_heads(subset_model: tuple[str, Path, Path],
                                                                tmp_path: Path) -> None:
    name, data, out = subset_model
    heads = SUBSETS[name][1]
    docs = write_jsonl(tmp_path / "docs.jsonl", [{"id": "a", "text": "Germany criticized Kenya on Monday. Russia met the army."}])
    for backend in ("auto", "torch"):
        scored = tmp_path / f"scored-{backend}.jsonl"
        assert main(["score", str(docs), "-o", str(scored), "--model", str(out), "--targets", "Kenya",
                     "--backend", backend, "--no-progress"]) == 0
        records = [json.loads(line) for line in scored.read_text().splitlines()]
        assert len(records) == 2
        for record in records:
            expected = {"doc_id", "sentence_index", "start", "end", "text", "model"}.union(
                *(RECORD_KEYS[h] for h in heads))
            assert set(record) == expected and list(record)[-1] == "model"
            for actor in record.get("actors", []):
                assert ("stance" in actor) == ("stance" in heads) and ("stance_score" in actor) == ("stance" in heads)
            if "stance" in heads:
                assert [s["target"] for s in record["stance"]][-1:] == ["Kenya"]
    csv_out = tmp_path / "scored.csv"
    assert main(["score", str(docs), "-o", str(csv_out), "--model", str(out), "--no-progress"]) == 0
    parquet_out = tmp_path / "scored.parquet"
    assert main(["score", str(docs), "-o", str(parquet_out), "--model", str(out), "--no-progress"]) == 0

    assert main(["evaluate", str(data), "--model", str(out), "-o", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert ("event_type" in report) == ("event_type" in heads)
    assert ("actors" in report) == ("actors" in heads)
    assert "stance" not in report  # no actor stances in these data sets
    assert ("stance_targets" in report) == ("stance" in heads)
    if "stance" in heads:
        assert "stance_targets_macro_f1" in report["summary"]
    # gold labels of a head the model lacks are not scored and do not stop evaluate
    full = write_jsonl(tmp_path / "full.jsonl", own_rows({"event_type", "actors", "stance"}))
    assert main(["evaluate", str(full), "--model", str(out), "-o", str(tmp_path / "report2")]) == 0


def test_the_page_builds_and_codes_with_only_the_present_heads(subset_model: tuple[str, Path, Path],
                                                               tmp_path: Path) -> None:
    from eventcoder.model.predictor import Predictor
    from eventcoder.serve.app import MAX_CHARS, TABLE_HEADERS, ModelHolder, PageActions, build_demo, table_columns

    name, _, out = subset_model
    heads = SUBSETS[name][1]
    predictor = Predictor.from_pretrained(out)
    assert build_demo(ModelHolder(predictor)) is not None
    actions = PageActions(ModelHolder(predictor), tmp_path / "corrections.jsonl", None, MAX_CHARS)
    marked, rows, _, jsonl, records, _, status = actions.analyse("Germany criticized Kenya on Monday. Russia met the army.",
                                                                 "Kenya")
    assert "2 sentences coded" in status and len(rows) == 2
    headers = [TABLE_HEADERS[i] for i in table_columns(predictor.heads)]
    assert len(rows[0]) == len(headers)
    assert ("event type" in headers) == ("event_type" in heads)
    assert any(label == "EVENT" for _, label in marked) == ("event_type" in heads)
    assert [json.loads(line) for line in Path(jsonl).read_text().splitlines()] == records
    # a correction saves only the heads the model has, and the training reader takes it
    actions.pick_sentence(f"0: {records[0]['text'][:80]}", records)
    actor_rows = [["Germany", 0, 7, "SOURCE", ""]] if "actors" in heads else []
    message = actions.save_correction("0: x", records, "STATEMENT" if "event_type" in heads else None, "", actor_rows)
    assert message.startswith("Saved"), message
    saved = json.loads((tmp_path / "corrections.jsonl").read_text())
    assert ("event_type" in saved) == ("event_type" in heads) and ("stance" in saved) == ("stance" in heads)


# ------------------------------------------------------------------ --init-from, small data
def test_init_from_copies_the_encoder_and_the_heads_whose_labels_are_equal(trained_model: Path, tiny_corpus: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from eventcoder.training.trainer import MultiTaskTrainer

    rows = [json.loads(line) for line in tiny_corpus["train"].read_text().splitlines()]
    renamed = {"INITIATOR": "SOURCE", "TARGET": "TARGET", "OTHER": "OTHER"}
    for row in rows:  # same event types and stances, other roles: the actor head must start fresh
        for actor in row.get("actors") or []:
            actor["role"] = renamed[actor["role"]]
    data = write_jsonl(tmp_path / "renamed.jsonl", rows)
    config = tiny_config(Path("unused"), {"train": data, "dev": data}, tmp_path / "m", init_from=str(trained_model),
                         epochs=1, export_onnx=False)
    trainer = MultiTaskTrainer(config, progress=False)
    run = trainer._build(trainer.load_data(), config.init_from)
    old = load_file(str(trained_model / "model.safetensors"))
    new = {k: v.numpy() for k, v in run.network.state_dict().items()}
    assert set(trainer.init_report["heads_copied"]) >= {"event_type", "stance"}
    assert "actors" in trainer.init_report["heads_fresh"]
    for key in ("heads.event_type.weight", "heads.stance.bias", "encoder.encoder.layer.1.output.dense.weight",
                "encoder.embeddings.word_embeddings.weight"):
        assert (new[key] == old[key]).all(), key
    assert not (new["heads.actors.weight"] == old["heads.actors.weight"]).all()


def test_init_from_on_the_command_line(trained_model: Path, tiny_corpus: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "again"
    code = main(["train", "--config", str(REPO / "configs" / "custom.yaml"), "--train-file", str(tiny_corpus["train"]),
                 "--init-from", str(trained_model), "--output-dir", str(out), "--epochs", "1", "--no-onnx",
                 "--set", "max_length=40"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert "event_type" in metrics["init_from"]["heads_copied"]


def test_small_data_schedule_and_the_default_config_unchanged() -> None:
    from eventcoder.training.config import TrainConfig

    custom = TrainConfig.from_yaml(REPO / "configs" / "custom.yaml")
    assert custom.schedule_for(100) == {"epochs": 30, "learning_rate": 5e-5, "patience": 3, "min_epochs": 10,
                                        "small_data_recipe": True}
    assert custom.schedule_for(1000) == {"epochs": 6, "learning_rate": 1e-4, "patience": 3, "min_epochs": 2,
                                         "small_data_recipe": True}
    assert custom.schedule_for(5000) == {"epochs": 5, "learning_rate": 1e-4, "patience": 0, "min_epochs": 5,
                                         "small_data_recipe": False}
    assert custom.override(epochs=7).schedule_for(100)["epochs"] == 7
    assert not custom.override(epochs=7).schedule_for(100)["small_data_recipe"]
    default = TrainConfig.from_yaml(REPO / "configs" / "default.yaml")
    for n in (100, 6000):
        assert default.schedule_for(n) == {"epochs": 3, "learning_rate": 2e-4, "patience": 0, "min_epochs": 3,
                                           "small_data_recipe": False}


def test_early_stopping_ends_training_when_dev_stops_improving(tiny_base_model: Path, tiny_corpus: dict[str, Path],
                                                               tmp_path: Path) -> None:
    from eventcoder.training.trainer import train_from_config

    # rates so small that nothing changes: dev never improves on epoch 1
    config = tiny_config(tiny_base_model, tiny_corpus, tmp_path / "m", export_onnx=False, learning_rate=1e-12,
                         head_learning_rate=1e-12, patience=2).model_copy(update={"epochs": None})
    metrics = train_from_config(config, progress=False).metrics
    assert metrics["schedule"]["small_data_recipe"] and metrics["schedule"]["epochs"] == 30
    # not before a third of the 30 epochs: a small dev set's first scores are too coarse to stop on
    assert metrics["schedule"]["min_epochs"] == 10
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, 11)) and metrics["epochs"][-1]["early_stop"]
    assert metrics["best_epoch"] == 10  # every epoch tied with epoch 1: the later one is kept


def test_train_and_evaluate_read_a_datasets_folder_and_parquet(tiny_base_model: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from datasets import Dataset

    rows = own_rows({"event_type", "actors"})
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "mine"))
    Dataset.from_list(rows[:8]).to_parquet(str(tmp_path / "test.parquet"))
    out = tmp_path / "model"
    code = _train(["--config", str(REPO / "configs" / "custom.yaml"), "--train-file", str(tmp_path / "mine"),
                   "--test-file", str(tmp_path / "test.parquet"), "--output-dir", str(out), "--epochs", "1",
                   "--no-onnx"], tiny_base_model)
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_sentences"] + metrics["dev_sentences"] == len(rows)
    assert "event_type_macro_f1" in metrics["test"]["summary"]
    assert main(["evaluate", "--model", str(out), str(tmp_path / "test.parquet"), "-o", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["sentences"] == 8 and report["summary"] == metrics["test"]["summary"]
