"""Where a training step's time goes: forward, backward, optimizer step, for the default config, with
the plain and the fused AdamW. 40 batches each, the first 5 not counted.

    .venv/bin/python benchmarks/bench_train_step.py [--config configs/default.yaml]
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from eventcoder.model.heads import head_sizes
from eventcoder.model.network import EventCoderNetwork
from eventcoder.training.config import TrainConfig, resolve_base_model
from eventcoder.training.trainer import MultiTaskTrainer, freeze_lower_layers, length_bucketed_batches


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="configs/default.yaml")
    args = parser.parse_args()
    config = TrainConfig.from_yaml(args.config)
    torch.set_num_threads(config.threads or torch.get_num_threads())
    trainer = MultiTaskTrainer(config, progress=False)
    base = resolve_base_model(config.base_model)
    run = trainer._build(trainer.load_data(), base)
    features = run.features
    rng = random.Random(config.seed)
    batches = length_bucketed_batches([len(f.encoding.ids) for f in features], config.batch_size, rng)[:40]
    for fused in (False, True):
        torch.manual_seed(config.seed)
        network = EventCoderNetwork.from_base(base, head_sizes(run.maps))
        freeze_lower_layers(network, config.freeze_lower_layers)
        run.network = network
        network.train()
        optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=config.learning_rate,
                                      fused=fused)
        spent = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
        for index, batch in enumerate(batches):
            if index == 5:
                spent = dict.fromkeys(spent, 0.0)
            t0 = time.perf_counter()
            loss = trainer._step(run, [features[i] for i in batch], rng)
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
