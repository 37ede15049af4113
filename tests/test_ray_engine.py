"""`eventcoder score --engine ray`: the same records as the local engine, on a local Ray instance."""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from eventcoder.serve.cli import main
from eventcoder.serve.ray_engine import plan_chunks
from eventcoder.serve.scoring import ScoreOptions, score_files
from helpers import tiny_records
from eventcoder.training.data import DataError

# Ray Data's own DataContext() sets fields it has deprecated
pytestmark = [pytest.mark.integration,  # starts Ray: seconds per test
              pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local Ray instance for this module; a skip when Ray is not installed (CI installs it)."""
    pytest.importorskip("ray.data", reason='Ray is not installed (pip install ".[ray]")')
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False)  # never a cluster already running here
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two files, 300 documents of one to three sentences: a .jsonl (ids, per-row targets, a blank
    line and two bad rows) and a .csv without ids (row numbers become ids)."""
    sentences = [r["text"] for r in tiny_records()]
    rng = random.Random(11)

    def document() -> str:
        return " ".join(rng.sample(sentences, rng.randint(1, 3)))

    folder = tmp_path_factory.mktemp("archive")
    lines = []
    for i in range(180):
        row: dict[str, Any] = {"id": f"a{i}", "text": document()}
        if i % 7 == 0:
            row["targets"] = ["the government"]
        lines.append(json.dumps(row))
    lines[40] = "{not json"
    lines[90] = json.dumps({"id": "bad", "text": "Police fired tear gas.", "targets": "US forces"})
    lines.insert(120, "")
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (folder / "b.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "source"])
        writer.writerows([document(), "wire"] for _ in range(120))
    return folder


def _options(archive: Path, output: Path, model: Path, **changes: Any) -> ScoreOptions:
    options = ScoreOptions(inputs=[str(archive)], output=str(output), model=str(model), targets=["US forces"],
                           chunk_size=32, on_error="skip", progress=False)
    for key, value in changes.items():
        setattr(options, key, value)
    return options


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.to_pylist()


def test_ray_engine_writes_the_records_of_the_local_engine(local_ray: Any, trained_model: Path, archive: Path,
                                                           tmp_path: Path) -> None:
    from eventcoder.serve.ray_engine import score_files_ray

    local = score_files(_options(archive, tmp_path / "local.jsonl", trained_model))
    distributed = score_files_ray(_options(archive, tmp_path / "ray.jsonl", trained_model), num_workers=2)
    expected = (tmp_path / "local.jsonl").read_bytes()
    assert (tmp_path / "ray.jsonl").read_bytes() == expected
    records = [json.loads(line) for line in expected.decode().splitlines()]
    assert len(records) > 300 and {r["doc_id"].split(":")[0] for r in records} == {"a.jsonl", "b.csv"}
    assert any(s["target"] == "the government" for r in records for s in r["stance"])
    assert (distributed.documents, distributed.sentences, distributed.skipped, distributed.event_counts) == \
        (local.documents, local.sentences, local.skipped, local.event_counts)
    assert len(local.skipped) == 2 and local.documents == 300  # bad rows count as read documents


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_ray_engine_from_the_command_line(local_ray: Any, trained_model: Path, archive: Path, tmp_path: Path,
                                          suffix: str) -> None:
    common = [str(archive), "--model", str(trained_model), "--targets", "US forces", "--chunk-size", "25",
              "--on-error", "skip", "--no-progress"]
    assert main(["score", *common, "-o", str(tmp_path / f"local{suffix}")]) == 0
    assert main(["score", *common, "-o", str(tmp_path / f"ray{suffix}"), "--engine", "ray", "--num-workers", "2"]) == 0
    if suffix == ".csv":
        assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    else:
        assert _parquet_rows(tmp_path / "ray.parquet") == _parquet_rows(tmp_path / "local.parquet")
        assert not (tmp_path / "ray.parquet.parts").exists()


def test_ray_engine_stops_at_the_first_bad_row_like_the_local_engine(local_ray: Any, trained_model: Path,
                                                                     archive: Path, tmp_path: Path) -> None:
    from eventcoder.serve.ray_engine import score_files_ray

    with pytest.raises(DataError) as local:
        score_files(_options(archive, tmp_path / "local.jsonl", trained_model, on_error="fail"))
    with pytest.raises(DataError) as distributed:
        score_files_ray(_options(archive, tmp_path / "ray.jsonl", trained_model, on_error="fail"))
    assert str(distributed.value) == str(local.value) == f"{archive / 'a.jsonl'}:41: field 'line': not valid JSON " \
        "(Expecting property name enclosed in double quotes)"


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    doc = tmp_path / "a.txt"
    doc.write_text("Teachers marched in Buenos Aires against pay cuts.")
    code = main(["score", str(doc), "-o", str(tmp_path / "o.jsonl"), "--engine", "ray"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and 'pip install ".[ray]"' in err and "Traceback" not in err
    assert not (tmp_path / "o.jsonl").exists()


def test_ray_options_belong_to_the_ray_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("Teachers marched in Buenos Aires against pay cuts.")
    assert main(["score", str(doc), "-o", str(tmp_path / "o.jsonl"), "--num-workers", "4"]) == 2
    assert "--engine ray" in capsys.readouterr().err


@pytest.mark.parametrize("good,chunk_size", [([10], 4), ([3, 0, 5, 1, 7], 4), ([0, 0], 3), ([1] * 9, 4), ([8, 8], 4)])
def test_chunk_plan_cuts_the_local_engines_chunks(good: list[int], chunk_size: int) -> None:
    """Chunk k holds good documents k*chunk_size.. of the whole input, whichever files they are in."""
    everything = [(f, i) for f, n in enumerate(good) for i in range(n)]
    chunks: dict[int, list[tuple[int, int]]] = {}
    for task in plan_chunks(good, chunk_size):
        files = range(task["file"], task["last_file"] + 1)
        taken = [(f, i) for f in files for i in range(good[f])][task["skip"]:task["skip"] + task["take"]]
        assert len(taken) == task["take"]
        for k in range(0, len(taken), chunk_size):
            chunks[task["first_chunk"] + k // chunk_size] = taken[k:k + chunk_size]
    assert chunks == {k: everything[k * chunk_size:(k + 1) * chunk_size]
                      for k in range(-(-len(everything) // chunk_size))}
