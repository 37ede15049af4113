"""Where a training step's time goes: forward, backward, optimizer step, for the default config, with
the plain and the fused AdamW. 40 batches each, the first 5 not counted.

    .venv/bin/python benchmarks/bench_train_step.py [--config configs/default.yaml]
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from transformers import AutoTokenizer

from eventcoder.model.heads import STANCE_HEAD, head_sizes
from eventcoder.model.network import EventCoderNetwork
from eventcoder.model.tokenization import configure_tokenizer
from eventcoder.training.config import TrainConfig, resolve_base_model
from eventcoder.training.trainer import MultiTaskTrainer, build_label_maps, length_bucketed_batches, make_features


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="configs/default.yaml")
    args = parser.parse_args()
    config = TrainConfig.from_yaml(args.config)
    torch.set_num_threads(config.threads or torch.get_num_threads())
    trainer = MultiTaskTrainer(config, progress=False)
    train, _, label_sets = trainer._load_data()
    maps = build_label_maps(label_sets)
    trainer._none_stance_id = maps[STANCE_HEAD].label2id.get("NONE", -1)
    base = resolve_base_model(config.base_model)
    tokenizer = configure_tokenizer(AutoTokenizer.from_pretrained(base).backend_tokenizer, config.max_length)
    features = [make_features(r, tokenizer, maps) for r in train]
    rng = random.Random(config.seed)
    batches = length_bucketed_batches([len(f.encoding.ids) for f in features], config.batch_size, rng)[:40]
    for fused in (False, True):
        torch.manual_seed(config.seed)
        network = EventCoderNetwork.from_base(base, head_sizes(maps))
        network.train()
        optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, fused=fused)
        spent = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
        for index, batch in enumerate(batches):
            if index == 5:
                spent = dict.fromkeys(spent, 0.0)
            t0 = time.perf_counter()
            loss = trainer._step(network, [features[i] for i in batch], tokenizer, rng)
            t1 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t2 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimizer.step()
            t3 = time.perf_counter()
            spent["forward"] += t1 - t0
            spent["backward"] += t2 - t1
            spent["optimizer"] += t3 - t2
        steps = len(batches) - 5
        parts = ", ".join(f"{k} {v / steps * 1000:.0f} ms" for k, v in spent.items())
        print(f"AdamW fused={fused}: {parts}, step {sum(spent.values()) / steps * 1000:.0f} ms")


if __name__ == "__main__":
    main()
