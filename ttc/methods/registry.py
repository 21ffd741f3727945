"""The method registry: each method is one class in its own module, registered by name.

Callers ask a method what it can do (uses the PRM? labeled from a sample pool? which id
fields, which extra features?) instead of comparing method names. The registry's order
fixes the one-hot layout of the strategy features, so the layout is recorded in every
probe artifact and checked when one is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ttc.grid import StrategySpec
    from ttc.soft_labels import LabelInputs, SoftLabel
    from ttc.strategies import StrategyResult, StrategyRunner

_REGISTRY: dict[str, "Method"] = {}


class Method:
    """One test-time-compute method. Subclasses set the class flags and implement run/label."""

    name: ClassVar[str]
    uses_prm: ClassVar[bool] = True
    # Soft labels come from one scored pool of samples (plus, for composite methods, the
    # real runs of the strategies in `components`), with no generation of its own.
    pool_labelable: ClassVar[bool] = True
    # Spec fields written into the id after `n`, as (field, id key); `agg` and `then` are
    # appended by the grid when they apply.
    id_fields: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Names of method-specific strategy features (0 for the other methods).
    extra_feature_names: ClassVar[tuple[str, ...]] = ()

    def validate(self, spec: "StrategySpec") -> None:
        for fld, _ in (("beam_width", "m"), ("max_iterations", "it")):
            if fld not in dict(self.id_fields) and getattr(spec, fld) != 1:
                raise ValueError(f"{spec.method} takes no beam_width / max_iterations")
        if spec.tau is not None or spec.then is not None:
            raise ValueError(f"{spec.method} takes no tau / then (only escalate does)")

    def extra_features(self, spec: "StrategySpec") -> list[float]:
        return []

    def components(self, spec: "StrategySpec") -> list["StrategySpec"]:
        """Other strategies whose real runs this method's labels are built from."""
        return []

    def pool_sizes(self, spec: "StrategySpec") -> set[int]:
        """Sizes N of the timed sample runs (one engine call of N samples) whose union forms a
        query's labeling pool, as this strategy needs them."""
        return set()

    def latency_parts(self, spec: "StrategySpec", stage2_rate: float) -> list[tuple[str, float]]:
        """What one served request of `spec` waits for, as (timed component, expected count):
        `sample/n=N` (N samples in one call), `score/n=N` (their PRM scoring) or a run of a
        strategy that must run. Label latency is the sum of the components' latencies."""
        return [(spec.id, 1.0)]

    async def run(self, runner: "StrategyRunner", spec: "StrategySpec", queries: list) -> list["StrategyResult"]:
        raise NotImplementedError

    def label(self, spec: "StrategySpec", inputs: "LabelInputs") -> "SoftLabel":
        raise ValueError(f"{spec.id} cannot be labeled from a sample pool; run it")


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: adds one instance of the method under its name."""
    if cls.name in _REGISTRY:
        raise ValueError(f"method {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def get_method(name: str) -> Method:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(method_names())}") from None


def method_names() -> tuple[str, ...]:
    _load()
    return tuple(_REGISTRY)


def feature_layout() -> tuple[str, ...]:
    """Names of the strategy feature vector, in order (see StrategySpec.features)."""
    names = method_names()
    extra = [f for m in names for f in _REGISTRY[m].extra_feature_names]
    return (("log2_n", "beam_width", "max_iterations") + tuple(f"is_{m}" for m in names)
            + tuple(f"log2_n_x_{m}" for m in names) + tuple(extra))


def _load() -> None:
    import ttc.methods  # noqa: F401  (the package imports every method module once)
