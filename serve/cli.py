"""The `eventcoder` command: train, evaluate, score, export, demo."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

DEFAULT_MODEL = "models/default"
EXIT_USAGE = 2


class UserError(Exception):
    """An error the user can fix; printed as one line, exit code 2."""


def _add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="fine-tune a model and write its directory")
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--train-file")
    p.add_argument("--dev-file")
    p.add_argument("--test-file")
    p.add_argument("--extra-train-file", action="append", dest="extra_train_files",
                   help="more labeled data (e.g. corrections); repeatable")
    p.add_argument("--output-dir")
    p.add_argument("--base-model")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--labels-from-data", action="store_true",
                   help="every head's labels come from the training data (the config's label lists are ignored); "
                        "the config's dev, test and selection files are not used unless given here "
                        "(dev is then held out of the training data), and epochs, learning rate and early "
                        "stopping are chosen by data size unless given")
    p.add_argument("--init-from", metavar="DIR",
                   help="start from a trained eventcoder model directory (e.g. models/default): its encoder, and "
                        "every head whose labels equal the new ones; the other heads start fresh")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model directory (the old one is kept beside it as DIR.previous-TIME)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config setting, e.g. --set max_length=96")


def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="per-head metrics of a model on labeled data")
    p.add_argument("data")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("-o", "--output-dir", default=None, help="where report.json and confusion.png go")
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "onnx-int8", "torch"])
    p.add_argument("--skip-unknown", action="store_true",
                   help="leave out lines whose gold labels the model does not know (counted in the report) "
                        "instead of stopping at the first")


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum` (argparse names the option in its error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "whole number"
    return parse


CSV_RAW_HELP = ("CSV output: write cells as they are. By default a cell that starts with = + - @ or a tab or "
                "carriage return gets a leading single quote (') so that a spreadsheet shows it as text "
                "instead of running it as a formula (CSV injection, as OWASP advises)")


def _add_score(sub: Any) -> None:
    p = sub.add_parser("score", help="code every sentence of files of documents")
    p.add_argument("inputs", nargs="+",
                   help=".txt, .csv, .tsv, .jsonl, .jsonl.gz, .parquet files, folders (hidden files and folders "
                        "are left out) or globs; - reads stdin (JSONL, or text lines with --lines)")
    p.add_argument("-o", "--output", required=True,
                   help=".jsonl, .csv or .parquet; never an input, nor inside an input folder")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--no-split", action="store_true", help="each row is one sentence")
    p.add_argument("--lines", action="store_true", help=".txt and stdin: one document per line")
    p.add_argument("--targets", default="", help="comma-separated free-text stance targets")
    p.add_argument("--text-column", default="text")
    p.add_argument("--id-column", default=None,
                   help="the documents' ids (default: the column 'id' where a file has it, else row numbers); "
                        "a column named here must be in every file")
    p.add_argument("--chunk-size", type=whole_number(1), default=None,
                   help="documents per committed chunk (default: 1024 with --lines, else 256)")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted run from its checkpoint (with none, start from the beginning)")
    p.add_argument("--on-error", choices=["fail", "skip"], default="fail")
    p.add_argument("--summary", help="write a bar chart of event-type counts to this .png")
    p.add_argument("--csv-raw", action="store_true", help=CSV_RAW_HELP)
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "onnx-int8", "torch"])
    p.add_argument("--batch-size", type=whole_number(1), default=32)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: a Ray cluster (pip install \".[ray]\")")
    p.add_argument("--address", help="--engine ray: the cluster to join (e.g. auto, or HEAD_IP:6379); "
                   "default RAY_ADDRESS, else the cluster started last here, else a new local one")
    p.add_argument("--num-workers", type=whole_number(1),
                   help="--engine ray: scoring actors (default: one per CPU)")


def _add_export(sub: Any) -> None:
    p = sub.add_parser("export", help="write model.onnx and model.int8.onnx into a model directory")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--no-quantize", action="store_true")
    p.add_argument("--calibration-file", help="sentences (labeled data file) to calibrate the int8 smoothing on; "
                   "default: the model's training file, from its training_config.yaml")
    p.add_argument("--dev-file", help="labeled data to compare int8 with fp32 on; default: the model's dev file")


def _add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="the web page (binds 127.0.0.1 unless told otherwise)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--corrections", default="data/corrections.jsonl")
    p.add_argument("--config", default="configs/default.yaml", help="training config for retraining")
    p.add_argument("--max-chars", type=int, default=200_000,
                   help="longest article the page codes; longer text is cut with a message")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventcoder", description="Code news sentences: event type, actors, stance.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_evaluate, _add_score, _add_export, _add_demo):
        add(sub)
    return parser


# --------------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    from eventcoder.training.config import TrainConfig
    from eventcoder.training.trainer import train_from_config

    config = TrainConfig.from_yaml(args.config)
    overrides = dict(item.split("=", 1) for item in args.set if "=" in item)
    bad = [item for item in args.set if "=" not in item]
    if bad:
        raise UserError(f"--set expects KEY=VALUE, got {bad[0]!r}")
    named = dict(train_file=args.train_file, dev_file=args.dev_file, test_file=args.test_file,
                 output_dir=args.output_dir, base_model=args.base_model, epochs=args.epochs, seed=args.seed,
                 batch_size=args.batch_size, learning_rate=args.learning_rate,
                 extra_train_files=args.extra_train_files, init_from=args.init_from)
    if args.labels_from_data:
        # a new label set: the config's labels, its (PLOVER) dev, test and selection files and the schedule
        # tuned for them do not apply; epochs, rate and patience are chosen by data size (TrainConfig)
        own = {"dev_file": "", "test_file": "", "selection_file": "", "challenge_dir": "", "evaluate_epochs": [],
               "epochs": "", "learning_rate": "", "patience": "",  # "": unset (by data size)
               **{f"labels.{head}": [] for head in ("event_types", "roles", "stances", "actor_types", "modes")}}
        if "name" not in overrides:
            own["name"] = re.sub(r"[^\w.-]", "-", Path(args.output_dir or config.output_dir).name) or "custom"
        config = config.override(**own)
    config = config.override(**{**overrides, **{k: v for k, v in named.items() if v is not None}})
    if args.no_onnx:
        config = config.override(export_onnx=False)
    output = Path(config.output_dir)
    if output.exists() and not args.overwrite:
        raise UserError(f"{output} already exists: add --overwrite to replace it (the old model is kept as "
                        f"{output.name}.previous-TIME) or choose another --output-dir")
    if args.overwrite:
        config = config.override(keep_previous=True)
    result = train_from_config(config)
    summary = {k: result.metrics[k]["summary"] for k in ("dev", "test") if k in result.metrics}
    print(json.dumps({"output_dir": str(result.output_dir), "train_seconds": round(result.seconds, 1),
                      "best_epoch": result.metrics["best_epoch"], **summary,
                      **({"onnx": result.metrics["onnx"]} if "onnx" in result.metrics else {})}, indent=1))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from eventcoder.model.predictor import Predictor
    from eventcoder.training.data import label_sets_of, read_labeled_file, unknown_labels
    from eventcoder.training.metrics import evaluate_predictor
    from eventcoder.training.report import write_report

    predictor = Predictor.from_pretrained(args.model, backend=args.backend)
    records = read_labeled_file(args.data)
    # a head the model does not have is not scored: its gold labels do not stop the run
    unknown = unknown_labels(records, label_sets_of(predictor, absent_any=True))
    if unknown and not args.skip_unknown:
        source, field, label = unknown[0]
        lines = len({s for s, _, _ in unknown})
        raise UserError(f"{args.data}:{source.rsplit(':', 1)[-1]}: field '{field}': the model "
                        f"{predictor.model_tag} does not know the label {label!r} ({lines} of {len(records)} "
                        "lines have labels it lacks); add --skip-unknown to leave them out of the scores")
    skipped = {s for s, _, _ in unknown}
    records = [r for r in records if r.source not in skipped]
    if not records:
        raise UserError(f"{args.data}: every line has labels the model {predictor.model_tag} does not know")
    report = evaluate_predictor(predictor, records)
    report["model"] = predictor.model_tag
    report["backend"] = predictor.backend.name
    if unknown:
        report["skipped_unknown_labels"] = {"lines": len(skipped),
                                            "labels": sorted({f"{f.split('.')[-1]}={label}" for _, f, label in unknown})}
        print(f"left out {len(skipped)} lines with labels the model does not know: "
              f"{', '.join(report['skipped_unknown_labels']['labels'][:10])}", file=sys.stderr)
    out_dir = Path(args.output_dir) if args.output_dir else Path(args.model) / "evaluation"
    paths = write_report(report, out_dir)
    print(json.dumps(report["summary"], indent=1))
    print(f"report: {paths['json']}; confusion matrix: {paths['png']}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from eventcoder.serve.scoring import ScoreOptions, score_files

    options = ScoreOptions(
        inputs=args.inputs, output=args.output, model=args.model, split=not args.no_split, lines=args.lines,
        targets=[t.strip() for t in args.targets.split(",") if t.strip()], text_column=args.text_column,
        id_column=args.id_column, chunk_size=args.chunk_size or 0, resume=args.resume, on_error=args.on_error,
        summary_png=args.summary, backend=args.backend, batch_size=args.batch_size, progress=not args.no_progress,
        csv_raw=args.csv_raw)
    if args.engine == "ray":
        from eventcoder.serve.ray_engine import RayUnavailable, score_files_ray

        try:
            score_files_ray(options, address=args.address, num_workers=args.num_workers)
        except RayUnavailable as err:
            raise UserError(str(err)) from None
        return 0
    if args.address or args.num_workers:
        raise UserError("--address and --num-workers go with --engine ray")
    score_files(options)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from eventcoder.model.backends import TorchBackend
    from eventcoder.model.directory import read_metadata, write_metadata
    from eventcoder.model.heads import head_sizes
    from eventcoder.training.config import TrainConfig
    from eventcoder.training.data import read_labeled_file
    from eventcoder.training.trainer import export_and_choose

    model_dir = Path(args.model)
    metadata = read_metadata(model_dir)
    saved = model_dir / "training_config.yaml"
    config = TrainConfig.from_yaml(saved) if saved.is_file() else TrainConfig()
    calibration_file = args.calibration_file or (config.train_file if Path(config.train_file).is_file() else None)
    dev_file = args.dev_file or (config.dev_file if config.dev_file and Path(config.dev_file).is_file() else None)
    calibration = [r.text for r in read_labeled_file(calibration_file)][: config.calibration_sentences] \
        if calibration_file else []
    dev = read_labeled_file(dev_file) if dev_file else []
    backend = TorchBackend.from_directory(model_dir, head_sizes(metadata.label_maps), metadata.encoder_config)
    choice = export_and_choose(backend.network, model_dir, metadata, calibration_texts=calibration, dev_records=dev,
                               quantize=not args.no_quantize, smoothing_alpha=config.int8_smoothing_alpha)
    metadata.onnx, report = choice.files, choice.report
    write_metadata(model_dir, metadata)
    metrics_path = model_dir / "metrics.json"
    if "int8_loss" in report and metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        metrics["onnx"] = report
        metrics_path.write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    print(json.dumps({**metadata.onnx, **({"int8_loss": report["int8_loss"]} if "int8_loss" in report else {})}))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from eventcoder.serve.app import launch

    launch(model_dir=args.model, host=args.host, port=args.port, corrections=args.corrections,
           config=args.config, max_chars=args.max_chars)
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "score": cmd_score, "export": cmd_export, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    from eventcoder.serve.offline import set_offline_defaults

    set_offline_defaults()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    from eventcoder.model.directory import ModelDirectoryError
    from eventcoder.training.data import DataError

    try:
        return COMMANDS[args.command](args)
    except (UserError, DataError, ModelDirectoryError, OSError, ValueError) as err:  # OSError: unwritable output etc.
        if args.debug:
            raise
        print(f"eventcoder {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"eventcoder {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
