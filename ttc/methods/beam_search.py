"""PRM-guided step-level beam search, batched across queries and beams.

N beams; each iteration expands every kept beam m ways by one step (to the blank line),
scores the new steps with the PRM and keeps the N/m best unfinished candidates; the
first iteration expands the empty root N ways, the last runs to the end. All queries
and beams of an iteration go in one generation call and one scoring call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ttc.grading import split_steps
from ttc.interfaces import GenerationRequest, ScoreRequest
from ttc.methods.registry import Method, register
from ttc.voting import aggregate, best_scored

STEP_STOP = "\n\n"


@dataclass
class Beam:
    steps: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)  # one PRM reward per step, all known
    score: float = 0.0  # aggregated rewards
    done: bool = False

    @property
    def text(self) -> str:
        return STEP_STOP.join(self.steps)


@dataclass
class BeamState:
    """One query's search: the beams still expanding, the finished ones, what it cost."""

    active: list[Beam] = field(default_factory=lambda: [Beam()])
    finished: list[Beam] = field(default_factory=list)
    tokens: int = 0
    prm_steps: int = 0
    iterations: int = 0


@register
class BeamSearch(Method):
    name = "beam_search"
    pool_labelable = False
    id_fields = (("beam_width", "m"), ("max_iterations", "it"))

    def validate(self, spec):
        if spec.tau is not None or spec.then is not None:
            raise ValueError("beam_search takes no tau / then (only escalate does)")
        if spec.beam_width <= 0:
            raise ValueError(f"beam width must be positive, got {spec.beam_width}")
        if spec.n % spec.beam_width:
            raise ValueError(f"beam width {spec.beam_width} must divide n={spec.n}")
        if spec.max_iterations <= 0:
            raise ValueError(f"max_iterations must be positive, got {spec.max_iterations}")

    async def run(self, runner, spec, queries):
        from ttc.strategies import StrategyResult, request_seed

        s = runner.sampling
        keep = spec.n // spec.beam_width
        prompts = [runner.format.policy_prompt(q.question) for q in queries]
        states = [BeamState() for _ in queries]
        for it in range(spec.max_iterations):
            final = it == spec.max_iterations - 1
            reqs, owners = [], []
            for qi, st in enumerate(states):
                if len(st.finished) >= keep:
                    continue
                # The first iteration expands the empty root N ways; later ones each kept beam m ways.
                per_beam = spec.n if it == 0 else spec.beam_width
                for bi, beam in enumerate(st.active):
                    prefix = prompts[qi] + "".join(step + STEP_STOP for step in beam.steps)
                    reqs.append(GenerationRequest(
                        prompt=prefix, n=per_beam, temperature=s.temperature, top_p=s.top_p,
                        max_tokens=s.max_tokens if final else s.step_max_tokens,
                        stop=() if final else (STEP_STOP,),
                        seed=request_seed(s.seed, queries[qi].query_id, f"beam{it}.{bi}")))
                    owners.append((qi, beam))
            if not reqs:
                break
            outs = await runner.generator.generate(reqs)
            cands: list[list[tuple[Beam, Beam]]] = [[] for _ in queries]  # (parent, child)
            for (qi, parent), comps in zip(owners, outs):
                states[qi].iterations = it + 1
                for c in comps:
                    states[qi].tokens += c.tokens
                    new_steps = split_steps(c.text)
                    done = final or c.finish_reason != "stop" or not new_steps or "\\boxed" in c.text
                    cands[qi].append((parent, Beam(steps=parent.steps + new_steps, done=done)))
            flat = [(qi, parent, child) for qi in range(len(queries)) for parent, child in cands[qi]]
            rewards = await runner.scorer.score([
                ScoreRequest(question=queries[qi].question, steps=tuple(child.steps), known=len(parent.rewards))
                for qi, parent, child in flat])
            for (qi, parent, child), new in zip(flat, rewards):
                states[qi].prm_steps += len(new)
                child.rewards = parent.rewards + list(new)
                child.score = aggregate(child.rewards, spec.aggregation)
            for qi, st in enumerate(states):
                children = [child for _, child in cands[qi]]
                if not children:
                    continue
                st.finished += [b for b in children if b.done]
                st.active = sorted([b for b in children if not b.done], key=lambda b: -b.score)[:keep]
        results = []
        for q, st in zip(queries, states):
            pool = st.finished or st.active
            texts = [b.text for b in pool]
            answers = [runner.answer_of(t) for t in texts]
            scores = [b.score for b in pool]
            i = best_scored(answers, scores) if pool else None
            results.append(StrategyResult(
                query_id=q.query_id, strategy_id=spec.id,
                answer=answers[i] if i is not None else None,
                text=texts[i] if i is not None else "", tokens=st.tokens, latency_s=0.0,
                trace={"iterations": st.iterations, "finished": len(st.finished), "prm_steps": st.prm_steps,
                       "answers": answers, "scores": scores, "stage": 1, "candidates": texts}))
        return results
