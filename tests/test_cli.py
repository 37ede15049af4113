"""The eventcoder command: train, evaluate, score (every format, resume after SIGKILL), errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eventcoder.serve.cli import main

REPO = Path(__file__).resolve().parent.parent
DOCS = ["Gunmen shot dead four farmers near Jos on Monday. Germany condemned Belarus over the landing.",
        "Teachers marched in Buenos Aires against pay cuts.",
        "Elections are scheduled for March."]


def test_train_command_with_overrides(tiny_base_model: Path, tiny_corpus: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    code = main(["train", "--config", str(REPO / "configs" / "default.yaml"), "--train-file", str(tiny_corpus["train"]),
                 "--dev-file", str(tiny_corpus["dev"]), "--output-dir", str(out), "--base-model", str(tiny_base_model),
                 "--epochs", "1", "--seed", "3", "--no-onnx", "--set", "test_file=", "--set", "max_length=40",
                 "--set", 'loss_weights={"event_type": 1.0, "mode": 1.0, "actors": 1.0, "stance": 1.0, "actor_type": 0.5}'])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["best_epoch"] == 1 and "event_type_macro_f1" in summary["dev"]
    saved = (out / "training_config.yaml").read_text()
    assert "seed: 3" in saved and "max_length: 40" in saved and str(tiny_base_model) in saved
    assert "  mode: 1.0" in saved
    assert not (out / "model.onnx").exists()


def test_train_rejects_data_with_labels_unknown_to_the_config(tiny_base_model: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "A bomb went off.", "event_type": "EXPLOSION"}) + "\n")
    code = main(["train", "--train-file", str(bad), "--dev-file", str(bad), "--output-dir", str(tmp_path / "x"),
                 "--base-model", str(tiny_base_model)])
    err = capsys.readouterr().err
    assert code == 2 and f"{bad}:1: field 'event_type'" in err and "Traceback" not in err


def test_evaluate_writes_json_and_picture(trained_model: Path, tiny_corpus: dict[str, Path], tmp_path: Path) -> None:
    assert main(["evaluate", "--model", str(trained_model), str(tiny_corpus["dev"]), "-o", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["event_type"]["per_label"]) == {"ACCUSE", "ASSAULT", "CONSULT", "NONE", "PROTEST"}
    for label in report["event_type"]["per_label"].values():
        assert {"precision", "recall", "f1", "support"} <= set(label)
    assert {"INITIATOR", "TARGET"} <= set(report["actors"]["per_role"])
    assert "macro_f1" in report["stance"] and "macro_f1" in report["mode"] and "accuracy" in report["country"]
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_score_without_a_model_says_how_to_make_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text(DOCS[0])
    code = main(["score", str(doc), "-o", str(tmp_path / "o.jsonl"), "--model", str(tmp_path / "none")])
    assert code == 2 and "eventcoder train --config configs/default.yaml" in capsys.readouterr().err


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_score_jsonl_with_ids_and_row_targets(trained_model: Path, tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(json.dumps({"id": f"d{i}", "text": t, "targets": ["Belarus"] if i == 0 else []})
                             for i, t in enumerate(DOCS)) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["score", str(inp), "-o", str(out), "--model", str(trained_model), "--targets", "US forces",
                 "--no-progress"]) == 0
    rows = read_jsonl(out)
    assert [r["doc_id"] for r in rows] == ["d0", "d0", "d1", "d2"]
    assert [s["target"] for s in rows[0]["stance"]][-2:] == ["US forces", "Belarus"]
    assert [s["target"] for s in rows[2]["stance"]][-1:] == ["US forces"]
    assert not (tmp_path / "out.jsonl.checkpoint").exists()


def test_score_csv_tsv_parquet_and_txt_lines(trained_model: Path, tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"body": DOCS, "key": ["a", "b", "c"]})
    frame.to_csv(tmp_path / "in.csv", index=False)
    frame.to_csv(tmp_path / "in.tsv", index=False, sep="\t")
    frame.to_parquet(tmp_path / "in.parquet")
    (tmp_path / "in.txt").write_text("\n".join(DOCS) + "\n")
    expected = None
    for name in ("in.csv", "in.tsv", "in.parquet"):
        out = tmp_path / f"{name}.out.jsonl"
        assert main(["score", str(tmp_path / name), "-o", str(out), "--model", str(trained_model), "--text-column",
                     "body", "--id-column", "key", "--no-progress"]) == 0
        rows = read_jsonl(out)
        assert [r["doc_id"] for r in rows] == ["a", "a", "b", "c"]
        expected = expected or rows
        assert rows == expected
    out = tmp_path / "lines.csv"
    assert main(["score", str(tmp_path / "in.txt"), "--lines", "-o", str(out), "--model", str(trained_model),
                 "--no-progress"]) == 0
    with out.open() as handle:
        rows_csv = list(csv.DictReader(handle))
    assert [r["doc_id"] for r in rows_csv] == ["1", "1", "2", "3"]
    assert json.loads(rows_csv[0]["actors"]) == expected[0]["actors"]
    out_parquet = tmp_path / "out.parquet"
    assert main(["score", str(tmp_path / "in.txt"), "--lines", "--no-split", "-o", str(out_parquet), "--model",
                 str(trained_model), "--no-progress", "--summary", str(tmp_path / "s.png")]) == 0
    table = pd.read_parquet(out_parquet)
    assert list(table["doc_id"]) == ["1", "2", "3"] and (tmp_path / "s.png").exists()


def test_bad_rows_fail_or_are_skipped_and_reported(trained_model: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"text": DOCS[1]}) + "\n{broken\n" + json.dumps({"text": 5}) + "\n"
                   + json.dumps({"text": DOCS[2]}) + "\n")
    out = tmp_path / "o.jsonl"
    assert main(["score", str(inp), "-o", str(out), "--model", str(trained_model), "--no-progress"]) == 2
    assert f"{inp}:2: field 'line'" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "o.jsonl.checkpoint").exists()  # nothing committed, nothing left
    assert main(["score", str(inp), "-o", str(out), "--model", str(trained_model), "--no-progress",
                 "--on-error", "skip"]) == 0
    err = capsys.readouterr().err
    assert "skipped 2 bad rows" in err and f"{inp}:3: field 'text'" in err
    assert [r["doc_id"] for r in read_jsonl(out)] == ["1", "4"]


@pytest.mark.integration
def test_resume_after_sigkill_loses_and_doubles_nothing(trained_model: Path, tmp_path: Path) -> None:
    inp = tmp_path / "many.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "text": DOCS[i % 3]}) + "\n" for i in range(1500)))
    reference = tmp_path / "reference.jsonl"
    assert main(["score", str(inp), "-o", str(reference), "--model", str(trained_model), "--no-progress",
                 "--chunk-size", "20"]) == 0
    out = tmp_path / "killed.jsonl"
    command = [sys.executable, "-m", "eventcoder.serve.cli", "score", str(inp), "-o", str(out), "--model", str(trained_model),
               "--no-progress", "--chunk-size", "20"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed.jsonl.checkpoint"
    deadline = time.time() + 60
    while time.time() < deadline:
        if checkpoint.exists():
            try:
                if json.loads(checkpoint.read_text())["documents"] >= 200:
                    break
            except (ValueError, KeyError):
                pass
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = json.loads(checkpoint.read_text())["documents"]
    assert 0 < done < 1500, "the kill should land mid-run"
    assert main(["score", str(inp), "-o", str(out), "--model", str(trained_model), "--no-progress",
                 "--chunk-size", "20"]) == 2  # refuses to clobber an interrupted run
    assert main(["score", str(inp), "-o", str(out), "--model", str(trained_model), "--no-progress",
                 "--chunk-size", "20", "--resume"]) == 0
    assert out.read_text() == reference.read_text()


def test_line_input_commits_larger_chunks_by_default() -> None:
    from eventcoder.serve.scoring import DOCUMENTS_CHUNK_SIZE, LINES_CHUNK_SIZE, ScoreOptions

    assert ScoreOptions(inputs=[], output="o.jsonl", lines=True).chunk_size == LINES_CHUNK_SIZE == 1024
    assert ScoreOptions(inputs=[], output="o.jsonl").chunk_size == DOCUMENTS_CHUNK_SIZE == 256
    assert ScoreOptions(inputs=[], output="o.jsonl", lines=True, chunk_size=20).chunk_size == 20


def test_a_mapping_setting_that_is_not_a_mapping_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--config", str(REPO / "configs" / "default.yaml"), "--set", "loss_weights=1.5"])
    err = capsys.readouterr().err
    assert code == 2 and "setting 'loss_weights': expected a mapping" in err and "Traceback" not in err
