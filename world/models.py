"""Architectures of the tiny world: a Qwen2 policy and a Qwen2 process reward model.

The PRM mirrors what vLLM's ``Qwen2ForProcessRewardModel`` loads: a Qwen2
backbone under ``model.`` and a head ``score = Linear(h, h) -> ReLU -> Linear(h, 2)``
read at the step-tag token. transformers has no class for it (the Qwen PRMs ship
remote code), so the training-side module is ours, with the same parameter names.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from world.tokenizer import MODEL_MAX_LENGTH, vocab_size


def qwen2_config(hidden: int = 128, layers: int = 4, heads: int = 4, kv_heads: int = 2,
                 intermediate: int = 512):
    from transformers import Qwen2Config
    from world.tokenizer import build_tokenizer

    tok = build_tokenizer()
    return Qwen2Config(
        vocab_size=vocab_size(),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=MODEL_MAX_LENGTH,
        tie_word_embeddings=True,
        rope_theta=10000.0,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.eos_token_id,
        torch_dtype="float32",
    )


def new_policy(config, seed: int):
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config)


class TinyQwen2PRM(nn.Module):
    """Qwen2 backbone + 2-label step head; label 1 = the step is good."""

    def __init__(self, config):
        super().__init__()
        from transformers import Qwen2Model

        self.config = config
        self.model = Qwen2Model(config)
        h = config.hidden_size
        self.score = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2))

    @classmethod
    def from_policy(cls, policy, extra_layers: int = 0, freeze_base: bool = False) -> "TinyQwen2PRM":
        """Backbone from a policy, optionally topped with `extra_layers` fresh layers.

        The policy's last layer is where its prediction of the next token forms, so a verifier
        made of the policy alone has no layer left to compare that prediction with what was
        written. Fresh layers on top (zero-initialized outputs, so they start as identity) do
        the comparing; freezing the base keeps the policy's arithmetic intact while they learn."""
        from transformers import Qwen2Config

        cfg = {k: v for k, v in policy.config.to_dict().items() if k != "layer_types"}
        cfg["num_hidden_layers"] = policy.config.num_hidden_layers + extra_layers
        prm = cls(Qwen2Config(**cfg))
        missing, unexpected = prm.model.load_state_dict(policy.model.state_dict(), strict=False)
        assert not unexpected and all(k.startswith("layers.") for k in missing), (missing, unexpected)
        base = policy.config.num_hidden_layers
        for layer in prm.model.layers[base:]:
            nn.init.zeros_(layer.self_attn.o_proj.weight)
            nn.init.zeros_(layer.mlp.down_proj.weight)
        if freeze_base:
            for p in prm.model.embed_tokens.parameters():
                p.requires_grad_(False)
            for layer in prm.model.layers[:base]:
                for p in layer.parameters():
                    p.requires_grad_(False)
        return prm

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.score(hidden)

    def save(self, path: str | Path, step_tag_id: int):
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        cfg = self.config.to_dict()
        cfg.update(architectures=["Qwen2ForProcessRewardModel"], num_labels=2,
                   step_tag_id=step_tag_id, torch_dtype="float32")
        (path / "config.json").write_text(json.dumps(cfg, indent=2))
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(path / "model.safetensors"))

    @classmethod
    def load(cls, path: str | Path) -> "TinyQwen2PRM":
        from safetensors.torch import load_file
        from transformers import Qwen2Config

        cfg = json.loads((Path(path) / "config.json").read_text())
        prm = cls(Qwen2Config(**cfg))
        prm.load_state_dict(load_file(str(Path(path) / "model.safetensors")))
        return prm
