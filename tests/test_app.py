"""The page's pieces without a browser: highlights, uploads, corrections, retrain and swap."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import tiny_config
from eventcoder.model.predictor import Predictor
from eventcoder.serve.app import ModelHolder, PageActions, build_demo, highlighted, make_retrainer, read_upload, table_rows
from eventcoder.serve.corrections import append_correction, correction_record, count_corrections

ARTICLE = "Gunmen shot dead four farmers near Jos on Monday. Germany condemned Belarus over the forced landing."


def test_highlights_put_each_sentence_on_its_own_line_with_its_tag_first(trained_model: Path) -> None:
    records = [p.to_dict() for p in Predictor.from_pretrained(trained_model).predict([ARTICLE])]
    pieces = highlighted(ARTICLE, records)
    lines = "".join(t if label != "EVENT" else f"<{t}>" for t, label in pieces).split("\n")
    assert len(lines) == len(records) == 2
    for line, record in zip(lines, records):
        tag = record["event_type"] + (f"/{record['mode']}" if record.get("mode") else "")
        assert line == f"<{tag}> {record['text']}"
    for actor in records[1]["actors"]:
        assert (actor["text"], actor["role"]) in pieces
    rows = table_rows(records)
    assert rows[1][1] == records[1]["text"] and rows[1][2] == records[1]["event_type"]


def test_uploads_are_read_or_refused_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "One."}) + "\n" + json.dumps({"text": "Two."}) + "\n")
    assert read_upload(str(tmp_path / "a.jsonl")) == ("One.\n\nTwo.", "loaded 2 documents from a.jsonl")
    (tmp_path / "a.csv").write_text("id,text\n1,Alpha.\n2,Beta.\n")
    assert read_upload(str(tmp_path / "a.csv"))[0] == "Alpha.\n\nBeta."
    (tmp_path / "b.bin").write_bytes(b"\x00\x01\x02binary")
    assert read_upload(str(tmp_path / "b.bin")) == ("", "b.bin looks like a binary file, not text.")
    (tmp_path / "c.txt").write_bytes(b"caf\xe9")
    assert read_upload(str(tmp_path / "c.txt"))[1] == "c.txt is not UTF-8 text."
    (tmp_path / "d.jsonl").write_text("{oops\n")
    assert read_upload(str(tmp_path / "d.jsonl"))[1] == "d.jsonl:1: not valid JSON"


def test_corrections_are_validated_and_appended(tmp_path: Path) -> None:
    record = correction_record("Germany condemned Belarus.", "ACCUSE", "disapprove",
                               [{"start": 0, "end": 7, "role": "INITIATOR"},
                                {"start": 18, "end": 25, "role": "TARGET", "stance": "AGAINST"}])
    assert record["stance"] == [{"target": "Germany", "stance": "NONE"}, {"target": "Belarus", "stance": "AGAINST"}]
    with pytest.raises(ValueError, match="outside"):
        correction_record("Short.", "NONE", "", [{"start": 0, "end": 60, "role": "OTHER"}])
    with pytest.raises(ValueError, match="overlap"):
        correction_record("Germany condemned Belarus.", "NONE", "",
                          [{"start": 0, "end": 9, "role": "OTHER"}, {"start": 5, "end": 12, "role": "OTHER"}])
    path = tmp_path / "c" / "corrections.jsonl"
    append_correction(path, record)
    append_correction(path, record)
    assert count_corrections(path) == 2
    assert json.loads(path.read_text().splitlines()[0]) == record


def test_retrain_builds_a_candidate_shows_both_figures_and_serves_it_only_when_asked(
        trained_model: Path, tiny_base_model: Path, tiny_corpus: dict[str, Path], tmp_path: Path) -> None:
    model_dir = tmp_path / "models" / "default"
    shutil.copytree(trained_model, model_dir)
    holder = ModelHolder(Predictor.from_pretrained(model_dir), model_dir)
    before = holder.predictor
    corrections = tmp_path / "corrections.jsonl"
    retrain = make_retrainer(tiny_config(tiny_base_model, tiny_corpus, model_dir, epochs=2, quantize=False),
                             model_dir, corrections)
    actions = PageActions(holder, corrections, retrain, max_chars=10_000)
    assert actions.run_retrain() == ("Save at least one correction first.", False)
    append_correction(corrections, correction_record("Germany condemned Belarus.", "ACCUSE", "",
                                                     [{"start": 0, "end": 7, "role": "INITIATOR"}]))
    steps: list[float] = []
    message, waiting = actions.run_retrain(lambda fraction, desc="": steps.append(fraction))
    candidate = model_dir.parent / "default.candidate"
    assert waiting and message.startswith("Retrained on the corpus plus 1 corrections") and candidate.is_dir()
    assert steps[-1] == 1.0 and steps == sorted(steps)
    # both models' figures, side by side, before anything is served
    old = json.loads((model_dir / "metrics.json").read_text())["dev"]["summary"]["event_type_macro_f1"]
    new = json.loads((candidate / "metrics.json").read_text())["dev"]["summary"]["event_type_macro_f1"]
    assert f"| dev event_type_macro_f1 | {old:.3f} | {new:.3f} | {new - old:+.3f} |" in message
    assert holder.predictor is before and json.loads((candidate / "metrics.json").read_text())["train_sentences"] == 41
    assert str(corrections) in (candidate / "training_config.yaml").read_text()

    assert actions.serve_candidate().startswith("Now serving")
    assert holder.predictor is not before and holder.predictor.model_tag != before.model_tag
    assert not candidate.exists() and len(list(model_dir.parent.glob("default.previous-*"))) == 1
    assert json.loads((model_dir / "metrics.json").read_text())["train_sentences"] == 41
    assert holder.predictor.predict(["Germany condemned Belarus."], split=False)[0].event_type in holder.predictor.event_labels
    assert actions.serve_candidate() == "There is no retrained model waiting."

    served = holder.predictor
    message, waiting = actions.run_retrain()
    assert waiting and candidate.is_dir()
    assert actions.discard_candidate().startswith("Discarded") and not candidate.exists()
    assert holder.predictor is served


def test_page_module_loads_nothing_at_import(trained_model: Path) -> None:
    import subprocess
    import sys

    code = "import sys, eventcoder.serve.app; print('gradio' in sys.modules, 'torch' in sys.modules, 'onnxruntime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout.split()
    assert out == ["False", "False", "False"]
    import gradio as gr

    assert isinstance(build_demo(Predictor.from_pretrained(trained_model)), gr.Blocks)


def _page_function(demo: object, name: str) -> object:
    return next(f.fn for f in demo.fns.values() if f.fn.__name__ == name)  # type: ignore[attr-defined]


def test_corrections_saved_from_the_page_are_accepted_by_the_training_reader(trained_model: Path,
                                                                             tmp_path: Path) -> None:
    from eventcoder.training.data import label_sets_of, read_labeled_file

    predictor = Predictor.from_pretrained(trained_model)
    labels = label_sets_of(predictor)
    event_type, mode = predictor.mode_labels[0].split("/")
    other_type, other_mode = next(m.split("/") for m in predictor.mode_labels if not m.startswith(event_type + "/"))
    corrections = tmp_path / "corrections.jsonl"
    demo = build_demo(predictor, corrections)
    analyse, save = _page_function(demo, "analyse"), _page_function(demo, "save_correction")
    outputs = analyse("Germany condemned Belarus. Police fired.", "")
    choice, records = outputs[5]["value"], outputs[4]
    role = labels.roles[0]
    # the mode as the page shows it is stored bare
    assert save(choice, records, event_type, f"{event_type}/{mode}", [["Germany", 0, 7, role, "NONE"]]).startswith("Saved")
    # refused, with the reason: a mode of another type, markup, a label the model lacks, fractional offsets
    for bad_mode in (f"{other_type}/{other_mode}", "<script>alert(1)</script>"):
        message = save(choice, records, event_type, bad_mode, [])
        assert message.startswith("Not saved") and "mode" in message, message
    assert save(choice, records, "NOT_A_TYPE", "", []).startswith("Not saved: field 'event_type'")
    assert "whole numbers" in save(choice, records, event_type, "", [["Germany", 0.5, 7, role, "NONE"]])
    # an edited actor text moves the offsets to where that text is
    assert save(choice, records, event_type, "", [["Belarus", 0, 7, role, "NONE"]]).startswith("Saved")
    assert "does not contain" in save(choice, records, event_type, "", [["Poland", 0, 7, role, "NONE"]])
    saved = read_labeled_file(corrections, labels)
    assert [(r.event_type, r.mode) for r in saved] == [(event_type, mode), (event_type, None)]
    assert saved[1].actor_text(saved[1].actors[0]) == "Belarus"


def test_page_status_says_what_it_coded_and_warns_on_text_it_cannot_code(trained_model: Path, tmp_path: Path) -> None:
    predictor = Predictor.from_pretrained(trained_model)
    analyse = _page_function(build_demo(predictor, tmp_path / "c.jsonl"), "analyse")
    status = analyse("Germany condemned Belarus.", "")[-1]
    assert f"`{predictor.model_tag}`" in status  # code, not a mail link
    emoji = analyse("\U0001F600\U0001F600 123 !!", "")
    assert emoji[1] == [] and "no words" in emoji[-1]
    arabic = analyse("أطلقت الشرطة النار على المتظاهرين في بغداد.", "")[-1]
    assert "does not look like English" in arabic and "sentences coded" in arabic
    controls = analyse("Police\x07 fired\x1b on the crowd.", "")
    assert "2 control characters" in controls[-1] and "\x07" not in controls[4][0]["text"]


def test_page_downloads_escape_formula_cells_and_keep_the_part_column(trained_model: Path) -> None:
    import csv

    from eventcoder.serve.app import write_downloads

    record = Predictor.from_pretrained(trained_model).predict(["=HYPERLINK(\"http://x\") Police fired."],
                                                              split=False)[0].to_dict()
    record["part"] = "1/2"
    csv_path, jsonl_path = write_downloads([record])
    row = next(csv.DictReader(open(csv_path, encoding="utf-8")))
    assert row["text"] == "'" + record["text"] and row["part"] == "1/2"
    assert json.loads(Path(jsonl_path).read_text())["text"] == record["text"]


def test_a_broken_candidate_is_not_served_and_the_served_model_stays(trained_model: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "models" / "default"
    shutil.copytree(trained_model, model_dir)
    candidate = model_dir.parent / "default.candidate"
    shutil.copytree(trained_model, candidate)
    (candidate / "eventcoder.json").write_text("{not json", encoding="utf-8")
    holder = ModelHolder(Predictor.from_pretrained(model_dir), model_dir)
    before = holder.predictor
    actions = PageActions(holder, tmp_path / "corrections.jsonl", None, max_chars=10_000)
    actions.candidate = candidate
    assert actions.serve_candidate().startswith("Not served:")
    assert holder.predictor is before and json.loads((model_dir / "eventcoder.json").read_text())
    assert not list(model_dir.parent.glob("default.previous-*"))
