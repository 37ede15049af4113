"""The model directory and the Predictor: round trips, backends, label sets from data, prediction records (docs/spec.md)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_config, write_jsonl
from eventcoder.model.directory import ModelDirectoryError, read_metadata, write_atomically
from eventcoder.model.predictor import Predictor
from eventcoder.training.trainer import train_from_config

ARTICLE = ("Gunmen shot dead four farmers near Jos on Monday. Germany condemned Belarus over the forced landing. "
           "Elections are scheduled for March.")
SPEC_SENTENCE_FIELDS = ["doc_id", "sentence_index", "start", "end", "text", "event_type", "event_score", "event_scores"]
SPEC_ACTOR_FIELDS = {"text", "start", "end", "role", "score", "stance", "stance_score"}


def test_model_directory_holds_every_part(trained_model: Path) -> None:
    names = {p.name for p in trained_model.iterdir()}
    assert {"eventcoder.json", "model.safetensors", "tokenizer.json", "training_config.yaml", "metrics.json",
            "README.md", "model.onnx", "model.int8.onnx"} <= names
    raw = json.loads((trained_model / "eventcoder.json").read_text())
    assert set(raw["heads"]) == {"event_type", "mode", "actors", "stance", "actor_type"}
    assert raw["heads"]["event_type"]["id2label"]["0"] == "ACCUSE"  # labels from the data, sorted
    metrics = json.loads((trained_model / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 25 and "dev" in metrics
    assert not list(trained_model.parent.glob(".tiny.tmp-*"))


def test_predictions_conform_to_spec(trained_model: Path) -> None:
    predictor = Predictor.from_pretrained(trained_model, backend="torch")
    records = [p.to_dict() for p in predictor.predict([ARTICLE], targets=["US forces"])]
    assert [r["sentence_index"] for r in records] == [0, 1, 2]
    for record in records:
        assert list(record)[: len(SPEC_SENTENCE_FIELDS)] == SPEC_SENTENCE_FIELDS
        assert ARTICLE[record["start"]:record["end"]] == record["text"]
        assert set(record["event_scores"]) == set(predictor.event_labels)
        assert record["event_scores"][record["event_type"]] == record["event_score"]
        assert abs(sum(record["event_scores"].values()) - 1) < 1e-3
        assert re.fullmatch(r"default@0\.1\.0\+\d{8}\.\d{6}", record["model"])
        for actor in record["actors"]:
            assert SPEC_ACTOR_FIELDS <= set(actor)
            assert record["text"][actor["start"]:actor["end"]] == actor["text"]
            assert actor["role"] in {"INITIATOR", "TARGET", "OTHER"}
        assert record["stance"][-1]["target"] == "US forces"
        assert record["stance"][-1]["stance"] in {"FAVOR", "AGAINST", "NONE"}
        if record["mode"]:
            assert f"{record['event_type']}/{record['mode']}" in predictor.mode_labels


def test_the_trained_model_learned_its_training_sentences(trained_model: Path, tiny_corpus: dict[str, Path]) -> None:
    """Not exact predictions (a tiny model's are fragile), but that training worked: it fits what it saw."""
    from eventcoder.training.data import read_labeled_file
    from eventcoder.training.metrics import evaluate_predictor

    summary = evaluate_predictor(Predictor.from_pretrained(trained_model, backend="torch"),
                                 read_labeled_file(tiny_corpus["train"]))["summary"]
    assert summary["event_type_accuracy"] >= 0.8, summary
    assert summary["actors_iou50_f1"] >= 0.5, summary


def test_save_load_round_trip_gives_identical_predictions(trained_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(trained_model, copy)
    first = [p.to_dict() for p in Predictor.from_pretrained(trained_model, backend="torch").predict([ARTICLE])]
    second = [p.to_dict() for p in Predictor.from_pretrained(copy, backend="torch").predict([ARTICLE])]
    assert first == second


def test_onnx_fp32_matches_torch_and_int8_stays_close(trained_model: Path) -> None:
    torch_predictor = Predictor.from_pretrained(trained_model, backend="torch")
    onnx_predictor = Predictor.from_pretrained(trained_model, backend="onnx")
    int8_predictor = Predictor.from_pretrained(trained_model, backend="onnx-int8")
    sentences = [s.strip() + "." for s in ARTICLE.split(".") if s.strip()]
    a, b, c = (p.analyze(sentences) for p in (torch_predictor, onnx_predictor, int8_predictor))
    for x, y, z in zip(a, b, c):
        np.testing.assert_allclose(x.event_probs, y.event_probs, atol=1e-4)
        assert [s[:3] for s in x.spans] == [s[:3] for s in y.spans]
        assert np.abs(x.event_probs - z.event_probs).max() < 0.2


def test_onnx_path_imports_no_torch(trained_model: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from model.predictor import Predictor; "
            f"p = Predictor.from_pretrained({str(trained_model)!r}); p.predict(['Police fired.']); "
            "print(p.backend.name, 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout.split()
    assert out[0].startswith("onnx:") and out[1:] == ["False", "False"]


def test_labels_live_with_the_model_five_classes_and_other_roles(tiny_base_model: Path, tmp_path: Path) -> None:
    rows = []
    texts = {"Battles": "Rebels clashed with soldiers near Goma.", "Riots": "Rioters burned tyres in Lagos.",
             "Protests": "Teachers marched in Nairobi.", "Explosions": "A bomb exploded in Kabul.",
             "Strategic": "The army moved tanks to the border."}
    for label, text in texts.items():
        first_word = text.split()[0]
        rows.append({"text": text, "event_type": label,
                     "actors": [{"start": 0, "end": len(first_word), "role": "SOURCE" if label != "Battles" else "RECIPROCAL"}],
                     "stance": [{"target": first_word, "stance": "NONE"}]})
    data = write_jsonl(tmp_path / "acled.jsonl", rows * 3)
    config = tiny_config(tiny_base_model, {"train": data, "dev": data}, tmp_path / "acled-model",
                         epochs=2, export_onnx=False)
    train_from_config(config, progress=False)
    metadata = read_metadata(tmp_path / "acled-model")
    assert metadata.label_maps["event_type"].labels == sorted(texts)
    assert metadata.label_maps["actors"].labels == ["O", "B-RECIPROCAL", "I-RECIPROCAL", "B-SOURCE", "I-SOURCE"]
    assert "mode" not in metadata.label_maps
    predictor = Predictor.from_pretrained(tmp_path / "acled-model")
    record = predictor.predict(["Rebels clashed with soldiers near Goma."], split=False)[0]
    assert record.event_type in texts and set(record.event_scores) == set(texts)
    assert all(a.role in {"SOURCE", "RECIPROCAL"} for a in record.actors)


def test_training_is_repeatable_with_a_seed(tiny_base_model: Path, tiny_corpus: dict[str, Path], tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        config = tiny_config(tiny_base_model, tiny_corpus, tmp_path / name, epochs=2, export_onnx=False)
        outputs.append(train_from_config(config, progress=False).metrics["epochs"])
    assert [e["train_loss"] for e in outputs[0]] == [e["train_loss"] for e in outputs[1]]


def test_missing_or_corrupt_model_files_give_clear_errors(trained_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelDirectoryError, match="eventcoder train --config configs/default.yaml"):
        Predictor.from_pretrained(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(trained_model, broken)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(ModelDirectoryError, match="missing tokenizer.json"):
        Predictor.from_pretrained(broken)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(trained_model, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelDirectoryError, match="corrupt"):
        Predictor.from_pretrained(corrupt)
    (corrupt / "eventcoder.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelDirectoryError, match="corrupt"):
        Predictor.from_pretrained(corrupt)


def test_atomic_write_keeps_the_old_directory_when_filling_fails(tmp_path: Path) -> None:
    target = tmp_path / "model"
    write_atomically(target, lambda d: (d / "a.txt").write_text("old"))

    def explode(directory: Path) -> None:
        (directory / "a.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(target, explode)
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    kept = write_atomically(target, lambda d: (d / "a.txt").write_text("new"), keep_previous=True)
    assert (target / "a.txt").read_text() == "new" and kept is not None and (kept / "a.txt").read_text() == "old"


def _many_sentences() -> list[str]:
    subjects = ["Police", "Rebels in the north", "The government of Kenya", "Protesters", "Germany"]
    verbs = ["fired on", "condemned", "met", "arrested", "sent aid to"]
    objects = ["farmers near Jos.", "Belarus over the forced landing.", "the opposition leader on Monday.",
               "striking workers outside the ministry in the capital.", "villagers."]
    return [f"{s} {v} {o}" for s in subjects for v in verbs for o in objects]  # 125, of many lengths


def test_waves_and_threads_keep_order_and_values(trained_model: Path) -> None:
    """Coding in small waves over several threads gives what one big wave on one thread gives (fp32),
    in the input's order, free-text targets included."""
    sentences = _many_sentences()
    texts = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
    big = Predictor.from_pretrained(trained_model, backend="onnx", threads=1)
    small = Predictor.from_pretrained(trained_model, backend="onnx", threads=2, batch_size=4)
    small.wave_size = 8
    assert big.backend.threads == 1 and small.backend.threads == 2
    a = big.predict(texts, targets=["US forces", "Belarus"])
    b = small.predict(texts, targets=["US forces", "Belarus"])
    assert [(r.doc_id, r.sentence_index, r.text) for r in a] == [(r.doc_id, r.sentence_index, r.text) for r in b]
    assert len(a) == len(sentences)
    for x, y in zip(a, b):
        np.testing.assert_allclose(list(x.event_scores.values()), list(y.event_scores.values()), atol=1e-4)
        assert [(s.target, s.stance) for s in x.stance] == [(s.target, s.stance) for s in y.stance]
        assert [s.target for s in x.stance][-2:] == ["US forces", "Belarus"]
        assert [(c.start, c.end, c.role) for c in x.actors] == [(c.start, c.end, c.role) for c in y.actors]
    gold = [[(0, 6)] for _ in sentences]
    for x, y in zip(big.analyze(sentences, gold), small.analyze(sentences, gold)):
        np.testing.assert_allclose(x.given_stance_probs[0], y.given_stance_probs[0], atol=1e-4)


def test_int8_results_do_not_depend_on_the_thread_count(trained_model: Path) -> None:
    sentences = _many_sentences()
    one = Predictor.from_pretrained(trained_model, backend="onnx-int8", threads=1)
    two = Predictor.from_pretrained(trained_model, backend="onnx-int8", threads=2)
    assert [r.to_dict() for r in one.predict(sentences, split=False)] == \
        [r.to_dict() for r in two.predict(sentences, split=False)]


def test_find_target_matches_whole_words_in_any_case() -> None:
    from eventcoder.model.predictor import find_target

    sentence = "The U.S. envoy met US forces near the bus depot; us officials declined to comment."
    assert find_target(sentence, "U.S.") == (4, 8)
    assert find_target(sentence, "us forces") == (19, 28)
    assert find_target(sentence, "US") == (19, 21)          # not inside "bus"
    assert find_target(sentence, "depot") == (42, 47)
    assert find_target(sentence, "dep") is None and find_target(sentence, "  ") is None


def test_a_target_named_in_the_sentence_gets_the_span_reading(trained_model: Path) -> None:
    """A free-text target the sentence names is read like an actor span of the same words, so the page
    never shows two stances toward one name; a target it does not name still gets the pair pass."""
    predictor = Predictor.from_pretrained(trained_model, backend="onnx")
    sentence = "Germany condemned Belarus over the forced landing."
    start = sentence.index("Belarus")
    given = predictor.analyze([sentence], gold_spans=[[(start, start + len("Belarus"))]])[0].given_stance_probs[0]
    record = predictor.predict([sentence], targets=["belarus", "the European Union", "the Belarus government"],
                               split=False)[0]
    named, absent, partial = record.stance[-3:]
    assert (named.target, absent.target, partial.target) == ("belarus", "the European Union", "the Belarus government")
    assert named.stance == predictor.stance_labels[int(given.argmax())]
    assert abs(named.score - float(given.max())) < 1e-6
    assert (absent.stance, absent.score) == ("NONE", 1.0)      # not a word of it in the sentence
    by_pair: list[list] = [[None]]
    predictor._pair_stance([sentence], [(0, 0, "the Belarus government")], by_pair)
    assert (partial.stance, partial.score) == (by_pair[0][0].stance, by_pair[0][0].score)


def test_shares_a_word_ignores_function_words_and_case() -> None:
    from eventcoder.model.predictor import shares_a_word

    assert shares_a_word("US troops shelled the town.", "US troops in Iraq")
    assert shares_a_word("Fighting near the UNITED NATIONS compound.", "the United Nations")
    assert not shares_a_word("Fighting near the town of Goma.", "the people of Iraq")
    assert not shares_a_word("Rebels attacked the convoy.", "the")


def test_pair_practice_includes_absent_targets_as_none(tiny_base_model: Path) -> None:
    """The free-text path learns that a target the sentence does not name gets NONE."""
    import random

    from eventcoder.model.tokenization import load_tokenizer
    from eventcoder.training.trainer import Features, pair_examples

    tokenizer = load_tokenizer(tiny_base_model / "tokenizer.json", 48)
    rows = [("Germany condemned Belarus.", [("Germany", 1), ("Belarus", 0)]),
            ("Police arrested protesters in Lagos.", [("Police", 2), ("protesters", 0)]),
            ("Rebels attacked a convoy.", [("Rebels", 2), ("a convoy", 0)]),
            ("Kenya sent aid to Somalia.", [("Kenya", 2), ("Somalia", 1)])]
    batch = [Features(text, tokenizer.encode(text), 0, -100, [], [], [], stances) for text, stances in rows]
    examples = pair_examples(batch, random.Random(0), practice_fraction=0.5, absent_fraction=1.0, none_id=2)
    practice, absent = examples[:2], examples[2:]
    assert all(stance != 2 for _, _, stance in practice)         # informative stances first
    assert len(absent) == 4 and all(stance == 2 for _, _, stance in absent)
    for target, text, _ in absent:
        assert target.lower() not in text.lower()
        assert any(target in [t for t, _ in f.span_stances] for f in batch)
    assert pair_examples(batch, random.Random(0), 0.5, 0.0, 2) == practice


def test_a_sentence_longer_than_the_window_is_coded_in_pieces_and_nothing_is_dropped(trained_model: Path) -> None:
    from eventcoder.model.predictor import Predictor

    predictor = Predictor.from_pretrained(trained_model)
    window = predictor.metadata.max_length
    filler = " ".join(["police fired on the crowd"] * (window // 2))
    sentence = f"Germany condemned Belarus and {filler} and rebels shelled Goma"  # no full stop inside
    document = "Talks resumed in Doha. " + sentence + "."
    records = [r.to_dict() for r in predictor.predict([document])]
    parts = [r for r in records if "part" in r]
    assert len(parts) >= 2 and [r["part"] for r in parts] == [f"{k}/{len(parts)}" for k in range(1, len(parts) + 1)]
    assert [r["sentence_index"] for r in records] == list(range(len(records)))
    for r in records:
        assert document[r["start"]:r["end"]] == r["text"]
    # the pieces cover the long sentence end to end, cut between words
    assert parts[0]["start"] == document.index("Germany") and parts[-1]["end"] == len(document)
    assert " ".join(r["text"] for r in parts) == document[parts[0]["start"]:]
    assert all(len(predictor.tokenizer.encode(r["text"]).ids) <= window for r in parts)
    assert "part" not in records[0]
    # with cut_long=False the old behaviour: one record, coded on its first window
    single = predictor.predict([sentence], split=False, cut_long=False)
    assert len(single) == 1 and single[0].part == ""


def test_frozen_lower_layers_do_not_change_and_the_rest_does(tiny_base_model: Path, tiny_corpus: dict[str, Path],
                                                             tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from eventcoder.training.trainer import train_from_config

    out = tmp_path / "frozen"
    train_from_config(tiny_config(tiny_base_model, tiny_corpus, out, epochs=2, freeze_lower_layers=1,
                                  export_onnx=False), progress=False)
    trained = load_file(str(out / "model.safetensors"))
    base = load_file(str(tiny_base_model / "model.safetensors"))
    def base_key(key: str) -> str:
        return key[len("encoder."):]
    frozen = [k for k in trained if k.startswith(("encoder.embeddings.", "encoder.encoder.layer.0."))]
    moving = [k for k in trained if k.startswith("encoder.encoder.layer.1.") and k.endswith("weight")]
    assert frozen and moving
    for key in frozen:
        assert np.array_equal(trained[key], base[base_key(key)]), key
    assert any(not np.array_equal(trained[k], base[base_key(k)]) for k in moving)


def test_epoch_is_chosen_on_the_selection_file_and_dev_is_still_reported(tiny_base_model: Path,
                                                                         tiny_corpus: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    from eventcoder.training.trainer import train_from_config

    out = tmp_path / "selected"
    result = train_from_config(tiny_config(tiny_base_model, tiny_corpus, out, epochs=3, export_onnx=False,
                                           selection_file=str(tiny_corpus["train"]), evaluate_epochs=[2]),
                               progress=False)
    history = result.metrics["epochs"]
    assert ["selection" in e for e in history] == [False, True, True]
    assert result.metrics["best_epoch"] in (2, 3)
    assert result.metrics["selection"]["file"] == str(tiny_corpus["train"])
    assert "event_type_macro_f1" in result.metrics["dev"]["summary"]


def test_forward_from_continues_the_lower_states_exactly(tiny_base_model: Path) -> None:
    import torch

    from eventcoder.model.network import EventCoderNetwork

    network = EventCoderNetwork.from_base(str(tiny_base_model), {"event_type": 4, "actors": 5}).eval()
    ids = torch.randint(5, 60, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:], mask[2, 3:] = 0, 0
    with torch.no_grad():
        whole = network(ids, mask)
        for layer in range(len(network.encoder_blocks()) + 1):
            continued = network.forward_from(network.lower_states(ids, mask, layer), mask, layer)
            for a, b in zip(whole, continued):
                assert torch.allclose(a, b, atol=1e-6), layer


def test_cached_frozen_layers_give_the_loss_of_running_them(tiny_base_model: Path, tiny_corpus: dict[str, Path],
                                                            tmp_path: Path) -> None:
    import random

    import torch

    from eventcoder.training.trainer import MultiTaskTrainer, frozen_modules

    config = tiny_config(tiny_base_model, tiny_corpus, tmp_path / "m", freeze_lower_layers=1, dropout=0.0,
                         pair_stance_fraction=0.0)
    trainer = MultiTaskTrainer(config, progress=False)
    run = trainer._build(trainer.load_data(), str(tiny_base_model))
    batch = run.features[:6]
    run.network.eval()  # no dropout anywhere: the two paths must then agree exactly
    running = trainer._step(run, batch, random.Random(0))
    trainer._cache_frozen_states(run.network, run.features)
    assert all(f.frozen_states is not None and f.frozen_states.shape[0] == len(f.encoding.ids) for f in run.features)
    cached = trainer._step(run, batch, random.Random(0))
    assert torch.allclose(running, cached, atol=1e-5)
    cached.backward()
    assert all(p.grad is None for p in frozen_modules(run.network, 1).parameters())
    assert run.network.heads["event_type"].weight.grad is not None


def test_augmented_sentences_give_new_features_with_their_own_cached_states(tiny_base_model: Path,
                                                                           tiny_corpus: dict[str, Path], tmp_path: Path) -> None:
    import random

    from eventcoder.training.augment import background_pool, name_pool
    from eventcoder.training.trainer import MultiTaskTrainer, train_from_config

    config = tiny_config(tiny_base_model, tiny_corpus, tmp_path / "m", freeze_lower_layers=1, swap_actor_names=1.0,
                         mix_background=0.5, epochs=2, export_onnx=False)
    trainer = MultiTaskTrainer(config, progress=False)
    run = trainer._build(trainer.load_data(), str(tiny_base_model))
    trainer._cache_frozen_states(run.network, run.features)
    names, backgrounds = name_pool(run.data.train), background_pool(run.data.train)
    assert names and backgrounds
    features = trainer._augmented(run, names, backgrounds, random.Random(0), cached=True)
    changed = [(old, new) for old, new in zip(run.features, features) if old is not new]
    assert changed and all(new.text != old.text for old, new in changed)
    assert all(new.frozen_states is not None and new.frozen_states.shape[0] == len(new.encoding.ids) for _, new in changed)
    mixed = [(old, new) for old, new in changed if any(b.text in new.text and b.text != new.text for b in backgrounds)]
    assert mixed and all(new.event == old.event and new.mode == old.mode for old, new in mixed)  # the sentence's labels
    result = train_from_config(config, progress=False)
    assert result.metrics["best_epoch"] in (1, 2)


def test_label_smoothing_changes_the_classification_losses_only(tiny_base_model: Path, tiny_corpus: dict[str, Path],
                                                                tmp_path: Path) -> None:
    import random

    import torch

    from eventcoder.training.trainer import MultiTaskTrainer, Features

    losses = {}
    for smoothing in (0.0, 0.2):
        config = tiny_config(tiny_base_model, tiny_corpus, tmp_path / "m", label_smoothing=smoothing,
                             pair_stance_fraction=0.0)
        trainer = MultiTaskTrainer(config, progress=False)
        torch.manual_seed(0)
        run = trainer._build(trainer.load_data(), str(tiny_base_model))
        run.network.eval()
        batch = run.features[:6]
        only_bio = [Features(f.text, f.encoding, -100, -100, f.bio, [], [], []) for f in batch]
        with torch.no_grad():
            losses[smoothing] = (trainer._step(run, batch, random.Random(0)).item(),
                                 trainer._step(run, only_bio, random.Random(0)).item())
    assert losses[0.0][0] != pytest.approx(losses[0.2][0])   # event, mode, stance, type: smoothed
    assert losses[0.0][1] == pytest.approx(losses[0.2][1])   # BIO tags: never smoothed


def test_encoder_layers_keeps_the_lowest_layers_with_their_pretrained_weights(tiny_base_model: Path) -> None:
    import torch

    from eventcoder.model.network import EventCoderNetwork

    full = EventCoderNetwork.from_base(str(tiny_base_model), {"event_type": 3})
    cut = EventCoderNetwork.from_base(str(tiny_base_model), {"event_type": 3}, layers=1)
    assert len(full.encoder_blocks()) == 2 and len(cut.encoder_blocks()) == 1
    assert cut.encoder.config.num_hidden_layers == 1   # saved with the model: it loads with one layer
    kept, original = cut.encoder.state_dict(), full.encoder.state_dict()
    assert all(torch.equal(kept[name], original[name]) for name in kept)
    with pytest.raises(ValueError, match="has only 2 layers"):
        EventCoderNetwork.from_base(str(tiny_base_model), {"event_type": 3}, layers=3)


def test_first_epoch_frozen_layers_update_only_from_the_second_epoch(tiny_base_model: Path,
                                                                     tiny_corpus: dict[str, Path], tmp_path: Path) -> None:
    import random

    from eventcoder.training.trainer import MultiTaskTrainer

    config = tiny_config(tiny_base_model, tiny_corpus, tmp_path / "m", freeze_lower_layers=0,
                         first_epoch_frozen_layers=1, export_onnx=False)
    trainer = MultiTaskTrainer(config, progress=False)
    run = trainer._build(trainer.load_data(), str(tiny_base_model))
    held = trainer._hold_for_first_epoch(run.network)
    lowest, upper = run.network.encoder_blocks()[0], run.network.encoder_blocks()[1]
    assert held == list(lowest.parameters()) and not any(p.requires_grad for p in lowest.parameters())
    loss = trainer._step(run, run.features[:4], random.Random(0))
    loss.backward()
    assert all(p.grad is None for p in lowest.parameters())      # no backward pass through it this epoch
    assert any(p.grad is not None for p in upper.parameters())
    for parameter in held:
        parameter.requires_grad_(True)
    no_op = MultiTaskTrainer(config.override(first_epoch_frozen_layers=0), progress=False)
    assert no_op._hold_for_first_epoch(run.network) == []
    assert all(p.requires_grad for p in lowest.parameters())
