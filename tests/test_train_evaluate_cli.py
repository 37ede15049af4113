"""`eventcoder train` and `evaluate` refuse what would lose data or mislead: an existing model
directory without --overwrite, gold labels the model does not know; files are readable by all."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from eventcoder.serve.cli import main

REPO = Path(__file__).resolve().parent.parent


def _train(base: Path, corpus: dict[str, Path], out: Path, *extra: str) -> int:
    return main(["train", "--config", str(REPO / "configs" / "default.yaml"), "--train-file", str(corpus["train"]),
                 "--dev-file", str(corpus["dev"]), "--output-dir", str(out), "--base-model", str(base),
                 "--epochs", "1", "--no-onnx", "--set", "test_file=", "--set", "max_length=40", *extra])


def test_train_keeps_an_existing_model_unless_told_to_overwrite(tiny_base_model: Path, tiny_corpus: dict[str, Path],
                                                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    assert _train(tiny_base_model, tiny_corpus, out) == 0
    first = (out / "eventcoder.json").read_text()
    capsys.readouterr()
    assert _train(tiny_base_model, tiny_corpus, out) == 2
    assert "already exists: add --overwrite" in capsys.readouterr().err
    assert (out / "eventcoder.json").read_text() == first
    assert _train(tiny_base_model, tiny_corpus, out, "--overwrite") == 0
    previous = list(tmp_path.glob("m.previous-*"))
    assert len(previous) == 1 and (previous[0] / "eventcoder.json").read_text() == first


def test_model_files_are_readable_as_the_umask_allows(trained_model: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    for path in trained_model.iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name


@pytest.mark.parametrize("rows,skip", [(2, False), (2, True), (1, True)])
def test_evaluate_refuses_or_counts_labels_the_model_does_not_know(trained_model: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   rows: int, skip: bool) -> None:
    data = tmp_path / "gold.jsonl"
    lines = [{"text": "Rebels bombed the bridge.", "event_type": "EXPLOSION"},
             {"text": "Germany condemned Belarus.", "event_type": "ACCUSE"}][:rows]
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code = main(["evaluate", "--model", str(trained_model), str(data), "-o", str(tmp_path / "r"),
                 *(["--skip-unknown"] if skip else [])])
    err = capsys.readouterr().err
    if not skip:
        assert code == 2 and f"{data}:1: field 'event_type'" in err and "'EXPLOSION'" in err and "--skip-unknown" in err
    elif rows == 1:
        assert code == 2 and "every line has labels the model" in err
    else:
        assert code == 0 and "left out 1 lines" in err
        report = json.loads((tmp_path / "r" / "report.json").read_text())
        assert report["skipped_unknown_labels"] == {"lines": 1, "labels": ["event_type=EXPLOSION"]}
        assert report["event_type"]["count"] == 1


def test_a_bad_test_file_stops_training_before_the_first_step(tiny_base_model: Path, tiny_corpus: dict[str, Path],
                                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_test = tmp_path / "test.jsonl"
    bad_test.write_text(json.dumps({"text": "A bomb went off.", "event_type": "EXPLOSION"}) + "\n")
    code = _train(tiny_base_model, tiny_corpus, tmp_path / "m", "--set", f"test_file={bad_test}")
    err = capsys.readouterr().err
    assert code == 2 and f"{bad_test}:1: field 'event_type'" in err
    assert "epoch 1" not in err and not (tmp_path / "m").exists()


def test_without_a_dev_file_dev_is_held_out_of_train_stratified(tiny_base_model: Path, tiny_corpus: dict[str, Path],
                                                                tmp_path: Path) -> None:
    from collections import Counter

    from eventcoder.training.config import TrainConfig
    from eventcoder.training.trainer import MultiTaskTrainer

    config = TrainConfig(base_model=str(tiny_base_model), train_file=str(tiny_corpus["train"]), dev_file="",
                         test_file="", dev_fraction=0.25, output_dir=str(tmp_path / "m"))
    data = MultiTaskTrainer(config, progress=False).load_data()
    every = Counter(r.event_type for r in data.train + data.dev)
    held = Counter(r.event_type for r in data.dev)
    assert set(held) == set(every) and all(every[k] - held[k] >= 1 for k in every)
    assert not {r.source for r in data.dev} & {r.source for r in data.train}
    assert "held out of" in data.dev_source and "seed" in data.dev_source
    again = MultiTaskTrainer(config, progress=False).load_data()
    assert [r.source for r in again.dev] == [r.source for r in data.dev]
