"""`policy_prefill`: what one prefill of the policy over the prompt says about the question.

One forward pass of the policy (the model that will answer) over the prompt, no
generation. From it:

- hidden states of a few layers (by default the middle and the last), each pooled two ways:
  the mean over the QUESTION's tokens (the prompt's template tokens are the same for every
  query, so they carry nothing) and the state at the last prompt token (where the answer
  starts; the paper's `policy_hidden` takes only this one, last layer);
- prefill statistics: the policy's surprisal of the question's tokens (mean, max, std), the
  entropy of its next-token distribution over them (mean, max), and at the last prompt token
  its entropy and top-1 probability (how sure it is of how to start), plus the log number of
  question tokens.

Nothing here knows the task: the question is located in the prompt by its characters
(tokenizer offsets), so the same code reads Qwen2.5's chat prompt in the GPU recipe.

Right padding keeps every real token at its true position and, under causal attention, blind
to the padding, so a question's features do not depend on what it is batched with.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from probe.features import length_feature

STAT_NAMES = ("surprisal_mean", "surprisal_max", "surprisal_std", "entropy_mean", "entropy_max",
              "last_entropy", "last_top1_prob", "log_question_tokens")


def default_layers(num_hidden_layers: int) -> tuple[int, ...]:
    """Middle and last layer (hidden_states index; 0 is the embedding output)."""
    return tuple(sorted({max(1, num_hidden_layers // 2), num_hidden_layers}))


class PolicyPrefillFeaturizer:
    name = "policy_prefill"

    def __init__(self, model_path: str, prompt_format, batch_size: int = 64,
                 layers: tuple[int, ...] | None = None):
        self.model_path = model_path
        self.format = prompt_format
        self.batch_size = batch_size
        self._layers = layers

    @cached_property
    def _model(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self.model_path)
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "right"
        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=torch.float32).eval()
        return tok, model

    @property
    def layers(self) -> tuple[int, ...]:
        n = self._model[1].config.num_hidden_layers
        layers = self._layers or default_layers(n)
        bad = [i for i in layers if not 0 <= i <= n]
        if bad:
            raise ValueError(f"policy_prefill layers {bad} out of range 0..{n}")
        return tuple(layers)

    @property
    def dim(self) -> int:
        return 2 * len(self.layers) * self._model[1].config.hidden_size + len(STAT_NAMES) + 1

    def _encode(self, questions: list[str]):
        """Token ids, attention mask and a mask of the question's own tokens."""
        import torch

        tok, _ = self._model
        prompts = [self.format.policy_prompt(q) for q in questions]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False,
                  return_offsets_mapping=True)
        offsets = enc.pop("offset_mapping")
        qmask = torch.zeros_like(enc["attention_mask"], dtype=torch.bool)
        for i, (p, q) in enumerate(zip(prompts, questions)):
            start = p.rfind(q) if q else -1
            if start < 0:
                raise ValueError("the prompt format does not contain the question verbatim")
            s, e = offsets[i, :, 0], offsets[i, :, 1]
            qmask[i] = (s >= start) & (e <= start + len(q)) & (e > s) & enc["attention_mask"][i].bool()
            if not qmask[i].any():  # an empty question: fall back to the whole prompt
                qmask[i] = enc["attention_mask"][i].bool()
        return enc, qmask

    def _batch(self, questions: list[str]) -> np.ndarray:
        import torch

        _, model = self._model
        enc, qmask = self._encode(questions)
        out = model(**enc, output_hidden_states=True)
        am = enc["attention_mask"]
        rows = torch.arange(am.shape[0])
        last = am.sum(1) - 1
        w = qmask.float().unsqueeze(-1)
        pooled = []
        for i in self.layers:
            h = out.hidden_states[i]
            pooled += [(h * w).sum(1) / w.sum(1), h[rows, last]]
        logp = torch.log_softmax(out.logits.float(), dim=-1)
        entropy = -(logp.exp() * logp).sum(-1)  # [B, T]: of the distribution predicting token t+1
        # Surprisal of question token t+1 given tokens <= t; the first token of a prompt has none.
        surpr = -logp[:, :-1].gather(-1, enc["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)
        smask = qmask[:, 1:]
        emask = qmask  # entropy after each question token
        stats = torch.stack([
            _masked_mean(surpr, smask), _masked_max(surpr, smask), _masked_std(surpr, smask),
            _masked_mean(entropy, emask), _masked_max(entropy, emask),
            entropy[rows, last], logp[rows, last].exp().max(-1).values,
            torch.log1p(qmask.sum(1).float()),
        ], dim=1)
        return torch.cat(pooled + [stats], dim=1).numpy().astype(np.float32)

    def embed(self, questions: list[str]) -> np.ndarray:
        import torch

        questions = list(questions)
        if not questions:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.no_grad():
            parts = [self._batch(questions[b:b + self.batch_size])
                     for b in range(0, len(questions), self.batch_size)]
        return np.hstack([np.vstack(parts), length_feature(questions)])


def _masked_mean(x, m):
    m = m.float()
    return (x * m).sum(1) / m.sum(1).clamp(min=1)


def _masked_max(x, m):
    return x.masked_fill(~m, float("-inf")).max(1).values.clamp(min=0)  # no token: 0


def _masked_std(x, m):
    mu = _masked_mean(x, m).unsqueeze(1)
    return _masked_mean((x - mu) ** 2, m).sqrt()
