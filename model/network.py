"""The multi-task network: one shared encoder, sentence heads, a token head and span heads."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig

from eventcoder.model.backends import OUTPUT_NAMES
from eventcoder.model.heads import ACTOR_HEAD, EVENT_HEAD, MODE_HEAD, SPAN_HEADS

# the output each sentence/token head gives; an absent head's output is left out of the ONNX graph
HEAD_OUTPUTS = {"event_logits": EVENT_HEAD, "mode_logits": MODE_HEAD, "bio_logits": ACTOR_HEAD}


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class EventCoderNetwork(nn.Module):
    """Encoder + heads. `forward` returns what the ONNX graph returns too.

    Outputs: token vectors (B, T, H), the sentence vector (masked mean, B, H), event logits,
    mode logits and BIO logits (zero-width for a head the model does not have). Span heads take [span mean ; sentence vector] and are applied by
    `span_logits` (torch, for training) or `model.heads.linear` (NumPy, for inference).
    """

    def __init__(self, encoder: nn.Module, head_sizes: dict[str, int], dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.present_outputs_only = False
        self.heads = nn.ModuleDict()
        for name in (EVENT_HEAD, MODE_HEAD, ACTOR_HEAD):
            if name in head_sizes:
                self.heads[name] = nn.Linear(hidden, head_sizes[name])
        for name in SPAN_HEADS:
            if name in head_sizes:
                self.heads[name] = nn.Linear(2 * hidden, head_sizes[name])

    @classmethod
    def from_base(cls, base_model: str, head_sizes: dict[str, int], dropout: float = 0.1,
                  layers: int = 0) -> "EventCoderNetwork":
        """A fresh network on a pretrained encoder directory (heads randomly initialised); with `layers`
        > 0 only the encoder's lowest `layers` layers are kept (the saved config says how many)."""
        shape: dict[str, Any] = {}
        if layers:
            available = AutoConfig.from_pretrained(base_model).num_hidden_layers
            if layers > available:
                raise ValueError(f"encoder_layers={layers}: {base_model} has only {available} layers")
            shape["num_hidden_layers"] = layers
        # safetensors only: a pytorch_model.bin is a pickle, and unpickling can run code
        encoder = AutoModel.from_pretrained(base_model, add_pooling_layer=False, use_safetensors=True, **shape)
        return cls(encoder, head_sizes, dropout)

    @classmethod
    def from_encoder_config(cls, config: PretrainedConfig | dict[str, Any], head_sizes: dict[str, int],
                            dropout: float = 0.1) -> "EventCoderNetwork":
        """An empty network of the given shape, to be filled from a safetensors state dict."""
        if isinstance(config, dict):
            config = AutoConfig.for_model(**config)
        encoder = AutoModel.from_config(config, add_pooling_layer=False)
        return cls(encoder, head_sizes, dropout)

    def output_names(self) -> list[str]:
        """The outputs this network really has: hidden and pooled, and the logits of its heads."""
        return [name for name in OUTPUT_NAMES if name not in HEAD_OUTPUTS or HEAD_OUTPUTS[name] in self.heads]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and getattr(self.encoder.config, "type_vocab_size", 0) > 1:
            kwargs["token_type_ids"] = token_type_ids
        return self._outputs(self.encoder(**kwargs).last_hidden_state, attention_mask)

    def lower_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, layers: int) -> torch.Tensor:
        """The token vectors after the embeddings and the `layers` lowest encoder layers (0: the
        embeddings' output). With those layers frozen and in eval mode these never change during
        training, so the trainer computes them once and continues with `forward_from`."""
        hidden = self.encoder.embeddings(input_ids=input_ids)
        mask = self._layer_mask(hidden, attention_mask)
        for block in self.encoder_blocks()[:layers]:
            hidden = block(hidden, mask)
        return hidden

    def forward_from(self, hidden: torch.Tensor, attention_mask: torch.Tensor, layer: int) -> tuple[torch.Tensor, ...]:
        """`forward` continued from the output of `lower_states(..., layer)`: the same outputs."""
        mask = self._layer_mask(hidden, attention_mask)
        for block in self.encoder_blocks()[layer:]:
            hidden = block(hidden, mask)
        return self._outputs(hidden, attention_mask)

    def encoder_blocks(self) -> nn.ModuleList:
        blocks = getattr(getattr(self.encoder, "encoder", None), "layer", None)
        if blocks is None:
            raise ValueError("this needs a BERT-style encoder (encoder.encoder.layer)")
        return blocks

    def _layer_mask(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        """The attention mask in the form the encoder's layers take (it depends on the attention kernel)."""
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden, attention_mask=attention_mask)

    def _outputs(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pooled = masked_mean(hidden, attention_mask)
        dropped_pooled = self.dropout(pooled)
        event_logits = self.heads[EVENT_HEAD](dropped_pooled) if EVENT_HEAD in self.heads else pooled[:, :0]
        mode_logits = self.heads[MODE_HEAD](dropped_pooled) if MODE_HEAD in self.heads else pooled[:, :0]
        bio_logits = self.heads[ACTOR_HEAD](self.dropout(hidden)) if ACTOR_HEAD in self.heads else hidden[:, :, :0]
        outputs = (hidden, pooled, event_logits, mode_logits, bio_logits)
        if self.present_outputs_only:  # while exporting: an absent head gets no output in the graph
            return tuple(out for name, out in zip(OUTPUT_NAMES, outputs) if name in self.output_names())
        return outputs

    @contextmanager
    def exporting(self) -> Iterator["EventCoderNetwork"]:
        """Within: `forward` returns only `output_names()` (what `torch.onnx.export` is given)."""
        self.present_outputs_only = True
        try:
            yield self
        finally:
            self.present_outputs_only = False

    def span_logits(self, name: str, hidden: torch.Tensor, pooled: torch.Tensor,
                    spans: torch.Tensor) -> torch.Tensor:
        """Logits of a span head for rows (batch_index, first_token, last_token)."""
        positions = torch.arange(hidden.shape[1], device=hidden.device)
        mask = (positions[None, :] >= spans[:, 1:2]) & (positions[None, :] <= spans[:, 2:3])
        mask = mask.to(hidden.dtype)
        span_mean = torch.einsum("st,sth->sh", mask, hidden[spans[:, 0]]) / mask.sum(dim=1, keepdim=True)
        features = torch.cat([span_mean, pooled[spans[:, 0]]], dim=-1)
        return self.heads[name](self.dropout(features))

