"""The Gradio page. `build_demo(holder)` builds it around a loaded Predictor; nothing loads at import."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection

from eventcoder.serve.offline import set_offline_defaults

log = logging.getLogger(__name__)


ROLE_COLORS = {"INITIATOR": "#f4a261", "TARGET": "#8ecae6", "OTHER": "#d9d9d9", "EVENT": "#ffe08a"}
TABLE_HEADERS = ["#", "sentence", "event type", "confidence", "mode", "actors (role · type · country · stance)",
                 "stance toward your targets"]
# per column of TABLE_HEADERS: its width, and the record key (= head) it needs; a model without that head has no such column
RECORD_HEADS = ("event_type", "actors", "stance")
TABLE_COLUMNS = [("4%", None), ("38%", None), ("10%", "event_type"), ("8%", "event_type"), ("9%", "event_type"),
                 ("21%", "actors"), ("10%", "stance")]
ACTOR_HEADERS = ["text", "start", "end", "role", "stance"]
MAX_UPLOAD_BYTES = 2_000_000
MAX_CHARS = 200_000  # the page's default cap on an article (eventcoder demo --max-chars)
MAX_TARGETS, MAX_TARGET_CHARS = 10, 200  # free-text targets each cost a pass over every sentence
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # Unicode category Cc, less tab, LF, CR


class ModelHolder:
    """The current Predictor, swappable after a retrain without restarting the page."""

    def __init__(self, predictor: Any, model_dir: str | Path | None = None) -> None:
        self._predictor = predictor
        self.model_dir = Path(model_dir) if model_dir else None
        self._lock = threading.Lock()

    @property
    def predictor(self) -> Any:
        with self._lock:
            return self._predictor

    def swap(self, predictor: Any) -> None:
        with self._lock:
            self._predictor = predictor


def _actor_summary(actor: dict[str, Any]) -> str:
    parts = [actor["role"]] + [actor[k] for k in ("type", "country") if actor.get(k)]
    stance = f", {actor['stance']}" if actor.get("stance", "NONE") != "NONE" else ""
    return f"{actor['text']} ({' · '.join(parts)}{stance})"


def highlighted(article: str, records: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """The article as (text, label) pieces, one sentence a line: the sentence's event type first,
    then the sentence with its actors labeled by role. Text between sentences (spaces, line breaks)
    is replaced by the line break."""
    pieces: list[tuple[str, str | None]] = []
    for number, record in enumerate(records):
        if number:
            pieces.append(("\n", None))
        if "event_type" in record:  # a model without an event head: no tag
            pieces.append((f"{record['event_type']}" + (f"/{record['mode']}" if record.get("mode") else ""), "EVENT"))
            pieces.append((" ", None))
        inner = record["start"]
        for actor in sorted(record.get("actors", []), key=lambda a: a["start"]):
            start, end = record["start"] + actor["start"], record["start"] + actor["end"]
            if start > inner:
                pieces.append((article[inner:start], None))
            pieces.append((article[start:end], actor["role"]))
            inner = end
        if record["end"] > inner:
            pieces.append((article[inner:record["end"]], None))
    return pieces


def table_columns(heads: Any) -> list[int]:
    """Indices of the TABLE_HEADERS columns a model with these heads (or record keys) has."""
    return [i for i, (_, head) in enumerate(TABLE_COLUMNS) if head is None or head in heads]


def table_rows(records: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per record, with the columns of the heads the records have (`table_columns`)."""
    columns = table_columns(records[0].keys() if records else RECORD_HEADS)
    rows = []
    for r in records:
        actors = r.get("actors", [])
        free = "; ".join(f"{s['target']}: {s['stance']}" for s in r.get("stance", [])
                         if s["target"] not in {a["text"] for a in actors})
        row = [r["sentence_index"], r["text"], r.get("event_type"), round(r.get("event_score", 0.0), 3),
               r.get("mode", ""), "; ".join(_actor_summary(a) for a in actors), free]
        rows.append([row[i] for i in columns])
    return rows


def write_downloads(records: list[dict[str, Any]]) -> tuple[str, str]:
    from eventcoder.serve.outputs import CSV_FIELDS, csv_row

    directory = Path(tempfile.mkdtemp(prefix="eventcoder-"))
    jsonl = directory / "eventcoder.jsonl"
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    csv_path = directory / "eventcoder.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(csv_row(r) for r in records)  # formula-like cells escaped, as `eventcoder score` does
    return str(csv_path), str(jsonl)


def read_upload(path: str | None) -> tuple[str, str]:
    """Text of an uploaded .txt/.csv/.jsonl file (documents joined by blank lines) and a message.
    Never raises: every bad file gets a one-line message naming the file (and line)."""
    from eventcoder.model.files import lift_csv_field_limit, text_problem

    if not path:
        return "", ""
    file = Path(path)
    data = file.read_bytes()
    if len(data) > MAX_UPLOAD_BYTES:
        return "", f"{file.name} is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB; score it with `eventcoder score` instead."
    if b"\x00" in data:
        return "", f"{file.name} looks like a binary file, not text."
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "", f"{file.name} is not UTF-8 text."
    if not text.strip():
        return "", f"{file.name} is empty."
    suffix = file.suffix.lower()
    if suffix == ".jsonl":
        docs = []
        # split on newlines only: U+2028, U+0085 and friends may stand inside a JSON string
        for n, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # bad JSON, nesting too deep, a number too long
                return "", f"{file.name}:{n}: not valid JSON"
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                return "", f"{file.name}:{n}: field 'text' missing"
            problem = text_problem(row["text"])
            if problem:
                return "", f"{file.name}:{n}: field 'text': {problem}"
            docs.append(row["text"])
        return "\n\n".join(docs), f"loaded {len(docs)} documents from {file.name}"
    if suffix in (".csv", ".tsv"):
        lift_csv_field_limit()  # a cell may hold a whole article
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
        try:
            if not reader.fieldnames or "text" not in reader.fieldnames:
                return "", f"{file.name}: no 'text' column"
            docs = [row["text"] for row in reader if row.get("text")]
        except csv.Error as err:
            return "", f"{file.name}:{reader.line_num}: unreadable CSV ({err})"
        return "\n\n".join(docs), f"loaded {len(docs)} documents from {file.name}"
    return text, f"loaded {file.name}"


def retrain_candidate(holder: ModelHolder, retrain: Callable[[Callable[[float, str], None]], Path] | None,
                      corrections_path: str | Path, progress: Callable[[float, str], None]) -> tuple[str, Path | None]:
    """What the page's retrain button does: retrain on corpus + corrections into a candidate directory
    beside the served one and compare their figures. The served model is not touched: the analyst then
    serves the candidate (`serve_candidate`) or discards it. Returns the message and the candidate."""
    from eventcoder.serve.corrections import count_corrections

    if retrain is None or holder.model_dir is None:
        return "Retraining is not available in this page.", None
    corrections = count_corrections(corrections_path)
    if corrections == 0:
        return "Save at least one correction first.", None
    progress(0.0, "retraining")
    candidate = retrain(progress)
    table = compare_metrics(read_metrics(holder.model_dir), read_metrics(candidate))
    return (f"Retrained on the corpus plus {corrections} corrections into `{candidate}`. The page still serves "
            f"`{holder.predictor.model_tag}`; compare, then serve the retrained model or discard it.\n\n{table}",
            candidate)


def serve_candidate(holder: ModelHolder, candidate: Path) -> str:
    """Move the candidate into the served directory's place (the old one is kept beside it) and serve it."""
    from eventcoder.model.directory import replace_directory
    from eventcoder.model.predictor import Predictor

    assert holder.model_dir is not None
    predictor = Predictor.from_pretrained(candidate)  # loads before anything moves: a bad candidate changes nothing
    previous = replace_directory(candidate, holder.model_dir, keep_previous=True)
    holder.swap(predictor)
    return f"Now serving {predictor.model_tag} from `{holder.model_dir}` (the previous model is kept in `{previous}`)."


def read_metrics(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / "metrics.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def compare_metrics(served: dict[str, Any], retrained: dict[str, Any]) -> str:
    """A markdown table of the served and the retrained model's dev, test and challenge figures."""
    def figures(metrics: dict[str, Any]) -> dict[str, float]:
        found: dict[str, float] = {}
        for section in ("dev", "test"):
            for key, value in (metrics.get(section) or {}).get("summary", {}).items():
                found[f"{section} {key}"] = value
        for key, value in (metrics.get("challenge") or {}).get("overall", {}).items():
            found[f"challenge {key}"] = value
        return found

    old, new = figures(served), figures(retrained)
    if not new:
        return "(the retrained model has no dev or test figures to compare)"
    rows = ["| figure | served | retrained | change |", "|---|---|---|---|"]
    for name, value in new.items():
        before = old.get(name)
        change = f"{value - before:+.3f}" if before is not None else ""
        rows.append(f"| {name} | {'' if before is None else f'{before:.3f}'} | {value:.3f} | {change} |")
    return "\n".join(rows)


def text_note(article: str) -> str | None:
    """Why an article cannot be coded (None if it can). Text with no letters at all (emoji, digits,
    symbols) has nothing to code; the page says so instead of inventing an event."""
    if not any(ch.isalpha() for ch in article):
        return "The text has no words to code (only symbols, digits or emoji)."
    return None


def language_note(article: str) -> str:
    """A caution for text that is mostly not Latin script: the model was trained on English news."""
    letters = [ch for ch in article if ch.isalpha()]
    latin = sum(1 for ch in letters if "LATIN" in unicodedata.name(ch, ""))
    if letters and latin / len(letters) < 0.5:
        return ("This text does not look like English: the model was trained on English news only, "
                "so treat these codes as unreliable. ")
    return ""


def _clean(text: str) -> tuple[str, str]:
    """Lone surrogates (a browser may send them) and control characters other than line breaks and
    tabs become U+FFFD / a space; the tokenizer and the UTF-8 downloads cannot take them."""
    cleaned, controls = _CONTROL.subn(" ", _LONE_SURROGATE.sub("\ufffd", text or ""))
    return cleaned, f"{controls} control characters were replaced by spaces. " if controls else ""


class PageActions:
    """What the page's buttons do, around the served model (a ModelHolder)."""

    def __init__(self, holder: ModelHolder, corrections_path: str | Path,
                 retrain: Callable[[Callable[[float, str], None]], Any] | None, max_chars: int) -> None:
        self.holder = holder
        self.corrections_path = corrections_path
        self.retrain = retrain
        self.candidate: Path | None = None  # a retrained model waiting to be served or discarded
        self._candidate_lock = threading.Lock()
        self.max_chars = max_chars

    def analyse(self, article: str, targets_text: str) -> tuple[Any, ...]:
        import gradio as gr

        article, note = _clean(article)
        nothing = ([], [], None, None, [], gr.update(choices=[], value=None))
        if len(article) > self.max_chars:
            article = article[:self.max_chars]
            note += f"The text was cut to its first {self.max_chars:,} characters; score longer files with `eventcoder score`. "
        if not article.strip():
            return (*nothing, "Paste an article first.")
        problem = text_note(article)
        if problem:
            return (*nothing, note + problem)
        targets = [t.strip()[:MAX_TARGET_CHARS] for t in _clean(targets_text)[0].split(",") if t.strip()]
        if len(targets) > MAX_TARGETS:
            targets = targets[:MAX_TARGETS]
            note += f"Only the first {MAX_TARGETS} stance targets were used. "
        predictor = self.holder.predictor
        records = [p.to_dict() for p in predictor.predict([article], targets=targets or None)]
        if not records:
            return (*nothing, note + "No sentences found.")
        csv_path, jsonl_path = write_downloads(records)
        choices = [f"{r['sentence_index']}: {r['text'][:80]}" for r in records]
        # the model tag in backticks: Markdown would turn "name@version" into a mail link
        return (highlighted(article, records), table_rows(records), csv_path, jsonl_path, records,
                gr.update(choices=choices, value=choices[0]),
                note + language_note(article) + f"{len(records)} sentences coded with `{predictor.model_tag}`.")

    def pick_sentence(self, choice: str | None, records: list[dict[str, Any]]) -> tuple[Any, Any, Any]:
        import gradio as gr

        if not choice or not records:
            return gr.update(), "", []
        record = records[int(choice.split(":", 1)[0])]
        actors = [[a["text"], a["start"], a["end"], a["role"], a.get("stance", "")] for a in record.get("actors", [])]
        return gr.update(value=record.get("event_type")), record.get("mode", ""), actors

    def save_correction(self, choice: str | None, records: list[dict[str, Any]], event_type: str, mode: str,
                        actor_table: Any) -> str:
        """Validate the correction by the training reader's rules and the model's labels, then append it."""
        from eventcoder.serve.corrections import append_correction, correction_record, count_corrections
        from eventcoder.training.data import label_sets_of

        if not choice or not records:
            return "Code an article and pick a sentence first."
        record = records[int(choice.split(":", 1)[0])]
        rows = actor_table.values.tolist() if hasattr(actor_table, "values") else list(actor_table or [])
        actors = []
        for row in rows:
            if not row or all(str(cell).strip() in ("", "None", "nan") for cell in row):
                continue
            text, start, end, role, stance = (list(row) + [""] * 5)[:5]
            actors.append({"text": "" if text is None else str(text), "start": start, "end": end,
                           "role": "" if role is None else str(role).strip(),
                           "stance": "" if stance is None else str(stance).strip()})
        try:
            fixed = correction_record(record["text"], event_type or "", mode or "", actors,
                                      labels=label_sets_of(self.holder.predictor))
        except ValueError as err:
            return f"Not saved: {err}"
        append_correction(self.corrections_path, fixed)
        return f"Saved. {count_corrections(self.corrections_path)} corrections in {self.corrections_path}."

    def run_retrain(self, progress: Any = None) -> tuple[str, bool]:
        """The message, and whether a candidate now waits to be served or discarded."""
        report = progress if progress is not None else (lambda fraction, desc="": None)
        message, candidate = retrain_candidate(self.holder, self.retrain, self.corrections_path,
                                               lambda fraction, message: report(fraction, desc=message))
        with self._candidate_lock:
            self.candidate = candidate or self.candidate
        return message, candidate is not None

    def serve_candidate(self) -> str:
        with self._candidate_lock:
            candidate, self.candidate = self.candidate, None
        if candidate is None or not candidate.is_dir():
            return "There is no retrained model waiting."
        try:
            return serve_candidate(self.holder, candidate)
        except Exception as err:  # a broken candidate must not take the page down; the served model stays
            log.exception("serving the retrained model failed")
            return f"Not served: {err}. The page still serves {self.holder.predictor.model_tag}."

    def discard_candidate(self) -> str:
        with self._candidate_lock:
            candidate, self.candidate = self.candidate, None
        if candidate is None:
            return "There is no retrained model waiting."
        shutil.rmtree(candidate, ignore_errors=True)
        return f"Discarded the retrained model; still serving {self.holder.predictor.model_tag}."


@dataclass
class _Page:
    """The page's components that events connect."""

    article: Any
    targets: Any
    run: Any
    upload: Any
    status: Any
    marked: Any
    table: Any
    csv_file: Any
    jsonl_file: Any
    records: Any
    sentence_pick: Any
    fixed_event: Any
    fixed_mode: Any
    actor_table: Any
    save: Any
    retrain: Any
    correction_status: Any
    serve_new: Any
    discard_new: Any


def _layout(gr: Any, event_labels: list[str], roles: list[str], stances: list[str],
            heads: Collection[str] = RECORD_HEADS) -> _Page:
    """The page; `heads` (the model's) decide which table columns and correction fields it shows."""
    from eventcoder.serve.examples import EXAMPLES

    gr.Markdown("# eventcoder\nPaste a news article: every sentence gets its event type (PLOVER), "
                "the actors with their roles, and the stance toward each.")
    with gr.Row():
        with gr.Column(scale=3):
            article = gr.Textbox(label="Article", lines=10, placeholder="Paste news text here", elem_id="article")
            targets = gr.Textbox(label="Stance targets (optional, comma-separated)",
                                 placeholder="US troops in Iraq, the government", elem_id="targets")
            with gr.Row():
                run = gr.Button("Code the article", variant="primary", elem_id="run")
                upload = gr.File(label="…or upload .txt / .csv / .jsonl", file_types=[".txt", ".csv", ".tsv", ".jsonl"],
                                 elem_id="upload")
        with gr.Column(scale=2):
            gr.Examples([[text] for _, text in EXAMPLES], inputs=[article], label="Example articles")
    status = gr.Markdown(elem_id="status")
    marked = gr.HighlightedText(label="One sentence a line: its event type, then its actors by role",
                                color_map=ROLE_COLORS, show_legend=True, elem_id="highlighted")
    columns = table_columns(heads)
    widths = [float(TABLE_COLUMNS[i][0].rstrip("%")) for i in columns]
    table = gr.Dataframe(headers=[TABLE_HEADERS[i] for i in columns], label="Per sentence", wrap=True,
                         interactive=False, elem_id="sentences",
                         column_widths=[f"{w * 100 / sum(widths):.0f}%" for w in widths])
    with gr.Row():
        csv_file = gr.File(label="CSV", elem_id="download-csv")
        jsonl_file = gr.File(label="JSONL", elem_id="download-jsonl")
    records = gr.State([])
    with gr.Accordion("Correct a sentence and retrain", open=False, elem_id="corrections"):
        sentence_pick = gr.Dropdown(label="Sentence", choices=[], elem_id="sentence-pick")
        with gr.Row():
            fixed_event = gr.Dropdown(label="Event type", choices=event_labels, elem_id="fixed-event",
                                      visible=bool(event_labels))
            fixed_mode = gr.Textbox(label="Mode (optional; e.g. violence or THREATEN/violence)", elem_id="fixed-mode",
                                    visible=bool(event_labels))
        actor_table = gr.Dataframe(headers=ACTOR_HEADERS, label=f"Actors (roles: {', '.join(roles)}; "
                                   f"stances: {', '.join(stances) or 'none (this model codes no stance)'})",
                                   interactive=True, elem_id="fixed-actors",
                                   datatype=["str", "number", "number", "str", "str"], visible=bool(roles))
        with gr.Row():
            save = gr.Button("Save correction", elem_id="save-correction")
            retrain = gr.Button("Retrain on corpus + corrections", elem_id="retrain")
        correction_status = gr.Markdown(elem_id="correction-status")
        with gr.Row():
            serve_new = gr.Button("Serve the retrained model", elem_id="serve-candidate", visible=False,
                                  variant="primary")
            discard_new = gr.Button("Discard it", elem_id="discard-candidate", visible=False)
    return _Page(article, targets, run, upload, status, marked, table, csv_file, jsonl_file, records, sentence_pick,
                 fixed_event, fixed_mode, actor_table, save, retrain, correction_status, serve_new, discard_new)


def _connect(gr: Any, page: _Page, actions: PageActions) -> None:
    outputs = [page.marked, page.table, page.csv_file, page.jsonl_file, page.records, page.sentence_pick, page.status]
    page.run.click(actions.analyse, inputs=[page.article, page.targets], outputs=outputs, concurrency_limit=2)
    page.upload.upload(read_upload, inputs=[page.upload], outputs=[page.article, page.status])
    page.sentence_pick.change(actions.pick_sentence, inputs=[page.sentence_pick, page.records],
                              outputs=[page.fixed_event, page.fixed_mode, page.actor_table])
    page.save.click(actions.save_correction,
                    inputs=[page.sentence_pick, page.records, page.fixed_event, page.fixed_mode, page.actor_table],
                    outputs=[page.correction_status])

    def run_retrain(progress: Any = gr.Progress()) -> tuple[str, Any, Any]:
        message, waiting = actions.run_retrain(progress)
        return message, gr.Button(visible=waiting), gr.Button(visible=waiting)

    def decided(action: Callable[[], str]) -> Callable[[], tuple[str, Any, Any]]:
        return lambda: (action(), gr.Button(visible=False), gr.Button(visible=False))

    choice = [page.correction_status, page.serve_new, page.discard_new]
    page.retrain.click(run_retrain, outputs=choice, concurrency_limit=1)
    page.serve_new.click(decided(actions.serve_candidate), outputs=choice, concurrency_limit=1)
    page.discard_new.click(decided(actions.discard_candidate), outputs=choice, concurrency_limit=1)


def build_demo(holder: ModelHolder | Any, corrections_path: str | Path = "data/corrections.jsonl",
               retrain: Callable[[Callable[[float, str], None]], Any] | None = None, max_chars: int = MAX_CHARS) -> Any:
    """The page around a ModelHolder (or a bare Predictor). `retrain(progress)` returns a new Predictor."""
    set_offline_defaults()
    import gradio as gr

    from eventcoder.training.data import label_sets_of

    if not isinstance(holder, ModelHolder):
        holder = ModelHolder(holder)
    labels = label_sets_of(holder.predictor)
    actions = PageActions(holder, corrections_path, retrain, max_chars)
    with gr.Blocks(title="eventcoder") as demo:
        page = _layout(gr, list(labels.event_types or []), list(labels.roles or []), list(labels.stances or []),
                       heads=getattr(holder.predictor, "heads", RECORD_HEADS))
        _connect(gr, page, actions)
    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


def make_retrainer(config: str | Path | Any, model_dir: str | Path, corrections_path: str | Path
                   ) -> Callable[[Callable[[float, str], None]], Path]:
    """Retrain on the config's corpus plus the corrections into `<model_dir>.candidate` (replacing an
    older candidate) and return that directory. `config` is a YAML path or a TrainConfig."""
    model_dir = Path(model_dir)
    candidate = model_dir.parent / f"{model_dir.name}.candidate"

    def retrain(progress: Callable[[float, str], None]) -> Path:
        from eventcoder.training.config import TrainConfig
        from eventcoder.training.trainer import train_from_config

        base = config if isinstance(config, TrainConfig) else TrainConfig.from_yaml(config)
        config_now = base.override(output_dir=str(candidate), keep_previous=False,
                                   extra_train_files=list(base.extra_train_files) + [str(corrections_path)])
        train_from_config(config_now, progress=False, callback=progress)
        return candidate

    return retrain


def launch(model_dir: str, host: str = "127.0.0.1", port: int = 7860, corrections: str = "data/corrections.jsonl",
           config: str = "configs/default.yaml", max_chars: int = MAX_CHARS) -> None:
    set_offline_defaults()
    from eventcoder.model.predictor import Predictor

    predictor = Predictor.from_pretrained(model_dir)
    holder = ModelHolder(predictor, model_dir)
    demo = build_demo(holder, corrections, make_retrainer(config, model_dir, corrections), max_chars=max_chars)
    user, password = os.environ.get("EVENTCODER_USER"), os.environ.get("EVENTCODER_PASSWORD")
    auth = (user, password) if user and password else None
    print(f"eventcoder demo on http://{host}:{port} (model {predictor.model_tag})")
    demo.launch(server_name=host, server_port=port, share=False, auth=auth, footer_links=[], quiet=True)
