"""`eventcoder score`: inputs are never overwritten or read back, a failed run leaves nothing, a
checkpoint pins its settings, ids stay apart across folders, CSV cells are defused, the summary
counts what this run did, stdin and .jsonl.gz inputs."""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from eventcoder.serve.cli import main

DOCS = ["Gunmen shot dead four farmers near Jos on Monday. Germany condemned Belarus over the landing.",
        "Teachers marched in Buenos Aires against pay cuts.",
        "Elections are scheduled for March."]


def score(model: Path, *args: Any) -> int:
    return main(["score", *map(str, args), "--model", str(model), "--no-progress"])


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def documents(n: int = 3) -> list[dict[str, Any]]:
    return [{"id": f"d{i}", "text": DOCS[i % 3]} for i in range(n)]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a refused command printed."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("eventcoder score: error: "), lines
    return lines[0]


def write_input(path: Path, rows: list[dict[str, Any]]) -> Path:
    """`rows` in the format of `path`'s suffix (.jsonl, .csv, .parquet)."""
    if path.suffix == ".jsonl":
        return write_jsonl(path, rows)
    import pandas as pd

    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


# ----------------------------------------------------------------------------- 2: an input is never the output
@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(trained_model: Path, tmp_path: Path, suffix: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    inp = write_input(tmp_path / f"in{suffix}", documents())
    before = inp.read_bytes()
    assert score(trained_model, inp, "-o", inp) == 2
    assert "input" in error_line(capsys)
    assert inp.read_bytes() == before


def test_an_output_linked_to_an_input_is_refused(trained_model: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", documents())
    before = inp.read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(inp)
    assert score(trained_model, inp, "-o", link) == 2
    error_line(capsys)
    assert inp.read_bytes() == before


@pytest.mark.parametrize("name", ["x.jsonl", "new.jsonl", "sub/new.parquet"])
def test_an_output_inside_an_input_folder_is_refused(trained_model: Path, tmp_path: Path, name: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", documents())
    x = write_jsonl(folder / "x.jsonl", documents(2))
    before = x.read_bytes()
    assert score(trained_model, folder, "-o", folder / name) == 2
    assert "inside the input folder" in error_line(capsys)
    assert x.read_bytes() == before
    assert sorted(p.name for p in folder.rglob("*")) == ["a.jsonl", "x.jsonl"]


def test_a_glob_never_reads_the_runs_own_output_or_its_parts(trained_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    write_input(data / "a.parquet", documents())
    write_jsonl(data / "a.jsonl", documents())
    out = data / "out.parquet"
    assert score(trained_model, str(data / "**" / "*.parquet"), "-o", out) == 0
    import pandas as pd

    first = pd.read_parquet(out)
    (data / "out.parquet.parts").mkdir()  # as a killed run leaves it
    first.to_parquet(data / "out.parquet.parts" / "part-000000.parquet")
    assert score(trained_model, str(data / "**" / "*.parquet"), "-o", out) == 0
    assert pd.read_parquet(out).equals(first)
    out_jsonl = data / "out.jsonl"
    for _ in range(2):
        assert score(trained_model, str(data / "*.jsonl"), "-o", out_jsonl) == 0
        assert {r["doc_id"] for r in read_jsonl(out_jsonl)} == {"d0", "d1", "d2"}


# ----------------------------------------------------------------------------- 3, 4: failed runs, checkpoints
@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_failed_run_that_committed_nothing_leaves_nothing(trained_model: Path, tmp_path: Path, suffix: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    inp = write_input(tmp_path / "news.csv", [{"body": d["text"], "key": d["id"]} for d in documents()])
    out = tmp_path / f"out{suffix}"
    assert score(trained_model, inp, "-o", out) == 2  # no column 'text'
    assert "--text-column" in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["news.csv"]
    assert score(trained_model, inp, "-o", out, "--text-column", "body") == 0
    assert out.exists() and not (tmp_path / f"out{suffix}.checkpoint").exists()


def interrupted_run(model: Path, tmp_path: Path) -> tuple[Path, Path]:
    """An input of 4 good rows, a bad one, 4 good; scored in chunks of 2 until the bad row stops it."""
    inp = tmp_path / "in.jsonl"
    rows = [json.dumps(d) for d in documents(9)]
    rows[4] = "{broken"
    inp.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert score(model, inp, "-o", out, "--chunk-size", "2") == 2
    assert json.loads((tmp_path / "out.jsonl.checkpoint").read_text())["documents"] == 4
    return inp, out


@pytest.mark.parametrize("change,named", [(["--batch-size", "8"], "--batch-size: then 32, now 8"),
                                          (["--backend", "torch"], "--backend"),
                                          (["--text-column", "body"], "--text-column"),
                                          (["--targets", "US forces"], "--targets"),
                                          (["--no-split"], "--no-split")])
def test_a_checkpoint_of_other_settings_is_refused_naming_them(trained_model: Path, tmp_path: Path, change: list[str],
                                                               named: str, capsys: pytest.CaptureFixture[str]) -> None:
    inp, out = interrupted_run(trained_model, tmp_path)
    capsys.readouterr()
    common = [inp, "-o", out, "--chunk-size", "2", "--on-error", "skip"]
    assert score(trained_model, *common, *change, "--resume") == 2
    line = error_line(capsys)
    assert named in line and "other inputs or options" in line
    assert score(trained_model, *common, *change) == 2  # the first message says so without --resume too
    assert named in error_line(capsys)
    assert score(trained_model, *common) == 2
    assert "add --resume" in error_line(capsys)
    assert score(trained_model, *common, "--resume") == 0
    reference = tmp_path / "reference.jsonl"
    assert score(trained_model, *common[:1], "-o", reference, *common[3:]) == 0
    assert out.read_bytes() == reference.read_bytes()


def test_a_changed_input_is_named(trained_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp, out = interrupted_run(trained_model, tmp_path)
    with inp.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"text": DOCS[0]}) + "\n")
    capsys.readouterr()
    assert score(trained_model, inp, "-o", out, "--chunk-size", "2", "--resume") == 2
    assert f"inputs: {inp.resolve()} changed" in error_line(capsys)


def test_resume_without_a_checkpoint_starts_afresh(trained_model: Path, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", documents())
    out = tmp_path / "coded.parquet"
    for _ in range(2):  # a scheduler runs the same command every time
        assert score(trained_model, inp, "-o", out, "--resume") == 0
        import pandas as pd

        assert list(pd.read_parquet(out)["doc_id"]) == ["d0", "d0", "d1", "d2"]


# ----------------------------------------------------------------------------- 7: --id-column
@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_an_id_column_given_but_missing_is_an_error(trained_model: Path, tmp_path: Path, suffix: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    inp = write_input(tmp_path / f"in{suffix}", [{"text": t} for t in DOCS])
    out = tmp_path / "out.jsonl"
    assert score(trained_model, inp, "-o", out, "--id-column", "url") == 2
    assert "field 'url'" in error_line(capsys)
    assert not out.exists()
    assert score(trained_model, inp, "-o", out) == 0  # the default id column may be absent
    assert [r["doc_id"] for r in read_jsonl(out)] == ["1", "1", "2", "3"]


# ----------------------------------------------------------------------------- 8: numeric options
@pytest.mark.parametrize("option,value", [("--batch-size", "-1"), ("--batch-size", "0"), ("--chunk-size", "-5"),
                                          ("--num-workers", "0"), ("--batch-size", "lots")])
def test_numeric_options_are_range_checked(tmp_path: Path, option: str, value: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text(DOCS[1])
    with pytest.raises(SystemExit) as exit_:
        main(["score", str(doc), "-o", str(tmp_path / "o.jsonl"), option, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"eventcoder score: error: argument {option}: ")


# ----------------------------------------------------------------------------- 10: --summary
@pytest.mark.parametrize("chart", ["x.txt", "missing_dir/x.png"])
def test_a_bad_summary_path_fails_before_scoring(trained_model: Path, tmp_path: Path, chart: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", documents())
    out = tmp_path / "out.jsonl"
    assert score(trained_model, inp, "-o", out, "--summary", tmp_path / chart) == 2
    assert "--summary" in error_line(capsys)
    assert not out.exists()


# ----------------------------------------------------------------------------- 11: ids and folder scans
def test_same_names_in_different_folders_get_different_ids(trained_model: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    for folder in ("x", "y", ".git"):
        (root / folder).mkdir(parents=True)
    for path in ("x/a.txt", "y/a.txt", ".hidden.txt", ".git/b.txt"):
        (root / path).write_text(DOCS[1])
    (root / "notes.md").write_text("# notes")
    (root / "c.json").write_text("{}")
    out = tmp_path / "out.jsonl"
    assert score(trained_model, root, "-o", out) == 0
    assert [r["doc_id"] for r in read_jsonl(out)] == ["x/a.txt:a", "y/a.txt:a"]
    err = capsys.readouterr().err
    assert "passed over 4 files" in err
    for name in (".hidden.txt", ".git/", "notes.md", "c.json"):
        assert name in err
    assert score(trained_model, root / "x", root / "y", "-o", out) == 0
    assert [r["doc_id"] for r in read_jsonl(out)] == [f"{(root / 'x').as_posix()}/a.txt:a",
                                                      f"{(root / 'y').as_posix()}/a.txt:a"]


# ----------------------------------------------------------------------------- 13: CSV injection
def test_csv_output_defuses_formulas_unless_raw(trained_model: Path, tmp_path: Path) -> None:
    texts = ['=HYPERLINK("http://evil.example", "click")', "+1 dead in Jos.", "-2 hurt in Lagos.",
             "@SUM(A1:A9) protesters marched.", "\tTeachers marched.", "Police fired."]
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "=1+2" if i == 0 else f"d{i}", "text": t}
                                              for i, t in enumerate(texts)])
    assert score(trained_model, inp, "-o", tmp_path / "o.jsonl", "--no-split") == 0
    records = read_jsonl(tmp_path / "o.jsonl")
    for flag, prefix in (([], "'"), (["--csv-raw"], "")):
        out = tmp_path / f"o{len(flag)}.csv"
        assert score(trained_model, inp, "-o", out, "--no-split", *flag) == 0
        with out.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["text"] for r in rows] == [(prefix if t.startswith(("=", "+", "-", "@", "\t")) else "") + t
                                             for t in (r["text"] for r in records)]
        assert rows[0]["doc_id"] == prefix + "=1+2" and rows[-1]["text"] == "Police fired."
        assert json.loads(rows[0]["actors"]) == records[0]["actors"]


# ----------------------------------------------------------------------------- 16: the summary, stdin, .jsonl.gz
def test_the_summary_counts_scored_skipped_and_resumed_apart(trained_model: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from eventcoder.serve.scoring import ScoreOptions, score_files

    inp, out = interrupted_run(trained_model, tmp_path)
    done = json.loads((tmp_path / "out.jsonl.checkpoint").read_text())["sentences"]
    capsys.readouterr()
    result = score_files(ScoreOptions(inputs=[str(inp)], output=str(out), model=str(trained_model), chunk_size=2,
                                      on_error="skip", resume=True, progress=False))
    assert (result.documents, result.scored, len(result.skipped), result.resumed) == (9, 8, 1, 4)
    assert result.resumed_sentences == done and result.sentences == len(read_jsonl(out))
    assert (result.documents_this_run, result.sentences_this_run) == (5, result.sentences - done)
    err = capsys.readouterr().err
    assert "8 documents scored, 1 skipped" in err and "resumed: 4 documents" in err
    assert f"this run: 5 documents, {result.sentences - done} sentences" in err


def stdin_of(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_stdin_jsonl_and_text_lines(trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    stdin_of(monkeypatch, "".join(json.dumps(d) + "\n" for d in documents()).encode())
    assert score(trained_model, "-", "-o", out) == 0
    assert [r["doc_id"] for r in read_jsonl(out)] == ["d0", "d0", "d1", "d2"]
    assert not (tmp_path / "out.jsonl.checkpoint").exists()
    stdin_of(monkeypatch, ("\n".join(DOCS) + "\n").encode())
    assert score(trained_model, "-", "-o", out, "--lines") == 0
    assert [r["doc_id"] for r in read_jsonl(out)] == ["1", "1", "2", "3"]
    capsys.readouterr()
    assert score(trained_model, "-", "-o", out, "--resume") == 2
    assert "stdin" in error_line(capsys)


def test_jsonl_gz_input(trained_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = write_jsonl(tmp_path / "in.jsonl", documents())
    packed = tmp_path / "packed.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert score(trained_model, plain, "-o", tmp_path / "a.jsonl") == 0
    assert score(trained_model, packed, "-o", tmp_path / "b.jsonl") == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(plain.read_bytes())[:-12])
    capsys.readouterr()
    assert score(trained_model, broken, "-o", tmp_path / "c.jsonl") == 2
    assert f"{broken}:" in error_line(capsys)


# ----------------------------------------------------------------------------- A1: model/files.py
def test_importing_the_scorer_leaves_csv_alone_and_its_reader_lifts_the_limit(tmp_path: Path) -> None:
    import subprocess

    code = "import csv; import eventcoder.serve.scoring, eventcoder.training.data; print(csv.field_size_limit())"
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == "131072"  # no import-time side effect
    from eventcoder.serve.scoring import Document, ScoreOptions, read_documents

    long_text = "Talks resumed. " * 20_000
    path = tmp_path / "long.csv"
    path.write_text(f'id,text\na,"{long_text}"\n', encoding="utf-8")
    previous = csv.field_size_limit(131_072)
    try:
        items = list(read_documents(path, ScoreOptions(inputs=[], output="unused.jsonl")))
    finally:
        csv.field_size_limit(previous)
    assert items == [Document("a", long_text, [])]


def test_an_atomic_write_that_fails_leaves_the_old_file(tmp_path: Path) -> None:
    from eventcoder.model.files import atomic_path, atomic_write_text

    path = tmp_path / "state.json"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
