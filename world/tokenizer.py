"""Character-level tokenizer for the tiny world, saved in Hugging Face format.

A byte-level BPE with no merges: one token per byte, so one per ASCII character.
It is a stock `tokenizers` model, so vLLM's fast incremental detokenizer and
transformers' AutoTokenizer load it unchanged. Two special tokens: the end of
text (also padding) and the PRM step tag, placed after each step as
Qwen2.5-Math-PRM places ``<extra_0>``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ttc.prompts import STEP_TAG  # the prompt format owns the tag; the tokenizer makes it one token

EOS_TOKEN = "<|endoftext|>"
MODEL_MAX_LENGTH = 512


def _byte_alphabet() -> list[str]:
    from tokenizers import pre_tokenizers

    return sorted(pre_tokenizers.ByteLevel.alphabet())


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: i for i, ch in enumerate(_byte_alphabet())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOS_TOKEN, STEP_TAG])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        additional_special_tokens=[STEP_TAG],
        model_max_length=MODEL_MAX_LENGTH,
        clean_up_tokenization_spaces=False,
    )


def save_tokenizer(path: str | Path):
    tok = build_tokenizer()
    tok.save_pretrained(str(path))
    # transformers may write a chat template or auto_map we do not want; keep it plain.
    cfg_path = Path(path) / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["clean_up_tokenization_spaces"] = False
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return tok


def vocab_size() -> int:
    return 256 + 2
