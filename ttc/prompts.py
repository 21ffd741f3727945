"""Prompt formats: how a question becomes a policy prompt and a PRM input.

The PRM input places a step tag after every step, as Qwen2.5-Math-PRM does; the
reward of a step is read at its tag. Each format is used identically for
training (CPU world), labeling and serving.
"""

from __future__ import annotations

from dataclasses import dataclass

from ttc.arithmetic import render_prompt as world_prompt

# The step tag both worlds use: Qwen2.5-Math-PRM reads a step's reward at <extra_0>, and the
# tiny world's tokenizer (world/tokenizer.py) makes it one special token the same way.
STEP_TAG = "<extra_0>"
QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True)
class PromptFormat:
    name: str
    step_tag: str

    def policy_prompt(self, question: str) -> str:
        if self.name == "world":
            return world_prompt(question)
        return (f"<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n"
                f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")

    def prm_input(self, question: str, steps: list[str] | tuple[str, ...]) -> str:
        for s in steps:
            if self.step_tag in s:
                raise ValueError(f"a step contains the step tag {self.step_tag!r}")
        if self.name == "world":
            # Tag right after each step, then the blank line the policy wrote.
            return world_prompt(question) + "\n\n".join(s + self.step_tag for s in steps)
        return (f"<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n"
                f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
                + "".join(s + self.step_tag for s in steps) + "<|im_end|><|endoftext|>")


FORMATS = {
    "world": PromptFormat("world", STEP_TAG),
    "qwen_math": PromptFormat("qwen_math", STEP_TAG),
}


def get_format(name: str) -> PromptFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown prompt format {name!r}; known: {sorted(FORMATS)}") from None
