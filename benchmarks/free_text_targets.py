"""Free-text targets on dev and test: the gold stance targets (all named in their sentences) given as
free-text targets, and five targets that most sentences do not mention (expected NONE).

    .venv/bin/python benchmarks/free_text_targets.py [MODEL_DIR]
"""
import sys
from collections import Counter
from eventcoder.model.predictor import Predictor
from eventcoder.training.data import read_labeled_file
from eventcoder.training.metrics import classification_report
P = Predictor.from_pretrained(sys.argv[1] if len(sys.argv) > 1 else 'models/default')
for split in ('dev', 'test'):
    recs = read_labeled_file(f'data/{split}.jsonl')
    with_stance = [r for r in recs if r.stance]
    preds = P.predict([r.text for r in with_stance], targets=[[s.target for s in r.stance] for r in with_stance], split=False)
    gold = [s.stance for r in with_stance for s in r.stance]
    pred = [x.stance for r, p in zip(with_stance, preds) for x in p.stance[-len(r.stance):]]
    named = classification_report(gold, pred, P.stance_labels)['macro_f1']
    counts = Counter()
    for target in ("the European Union", "Japan", "farmers", "the United Nations", "Hamas"):
        preds = P.predict([r.text for r in recs], targets=[target], split=False)
        counts.update(p.stance[-1].stance for p in preds if target.lower() not in p.text.lower())
    total = sum(counts.values())
    print(f"{split}: named targets macro-F1 {named:.4f} (n={len(gold)}); absent targets NONE {counts['NONE']/total:.3f} "
          f"(n={total}: {dict(counts)})")
