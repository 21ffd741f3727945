"""Served costs, online: what each strategy costs where it is paid, and what the queue adds.

The probe artifact's cost table measures strategies served alone, in process. A served
request also pays the proxy and handle hops, and under load the pools' queues dominate.
Three pieces, all pure (no Ray), used by the router for every decision:

- `OnlineCosts`: per-strategy service latency and tokens, seeded from the cost table and
  followed by an EWMA of what the router observes, with the running error of its
  predictions and the spread a budget must leave room for (per strategy, and the queue's).
- `QueueModel`: each pool's queueing delay from its live stats, pending work / throughput.
  With continuous batching a new engine request does not wait for the backlog to drain but
  shares the batch; its slowdown is still about the backlog's drain time (its per-sequence
  rate is throughput / active sequences), so one figure serves both views. Between polls
  the backlog drains at one second per second: a snapshot taken while a request was
  finishing must not make an idle pool look busy.
- `InFlight`: the delay the router's own running requests will add, from the work they
  still have: pool stats see only calls being served, not beam's later iterations or
  escalation's stage 2, so under a rising load they lag what a new request will share.
- `choose_or_shed`: the utility argmax over strategies predicted to fit a latency budget,
  where predicted latency = service latency + queue, the queue being the larger of the
  pools' (rounds on each pool x its delay) and the in-flight estimate, and (with a tail
  budget, the SLO's p95) whose predicted latency + z x spread fits that too; when none
  fits, a shed verdict with a Retry-After.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from probe.selection import fitting, select

POOLS = ("policy", "prm")


def pool_rounds(spec) -> dict[str, float]:
    """Sequential calls a strategy makes on each pool (each waits that pool's queue once).
    Beam search makes one policy and one PRM call per iteration; the seed is its iteration
    cap (conservative) until the router observes how many it ran."""
    if spec.method == "beam_search":
        return {"policy": float(spec.max_iterations), "prm": float(spec.max_iterations)}
    return {"policy": 1.0, "prm": 1.0 if spec.uses_prm else 0.0}


class OnlineCosts:
    """Per-strategy served service latency (queue excluded), tokens and pool rounds, and the
    spread of served latency around the prediction made with them.

    A mean within budget can hide a tail beyond it: verified escalation runs its second
    stage for some requests only (a service spread, per strategy), and under load the wait
    strays from its predicted queue in proportion to it (beam search waits each pool once per
    iteration, so its queue and its error are the largest). So the spread of a prediction
    with queue q is sqrt(service_var + rho^2 q^2): service_var per strategy, an EWMA of
    squared deviations from the service estimate (learned where the service estimate learns),
    seeded from the cost table's spread across labeled queries (or `seed_cv` x the mean where
    the table has none); rho^2 shared, an EWMA of 2 x max(0, error / predicted queue)^2 over
    requests whose predicted queue is at least half their service time: the upper
    semivariance (doubled, so a symmetric error gives its variance), since the tail is made of
    late requests, and a queue the estimate overstates would otherwise widen the tail it checks.
    The spread of a strategy the router stopped choosing under load so returns to its service
    spread as the queue drains."""

    def __init__(self, ids: list[str], tokens, latency_s, rounds: list[dict[str, float]], alpha: float = 0.2,
                 latency_sd_s=None, seed_cv: float = 0.5, queue_rel_sd: float = 0.5, max_rel_sd: float = 2.0):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.ids = list(ids)
        self.index = {s: j for j, s in enumerate(self.ids)}
        self.tokens = np.asarray(tokens, dtype=np.float64).copy()
        self.service_s = np.asarray(latency_s, dtype=np.float64).copy()
        sd = (seed_cv * self.service_s if latency_sd_s is None else
              np.array([seed_cv * m if v is None else float(v) for v, m in zip(latency_sd_s, self.service_s)]))
        self.service_var = np.square(np.asarray(sd, dtype=np.float64))
        self.queue_rel_var, self.max_rel_sd = queue_rel_sd ** 2, max_rel_sd
        self.rounds = np.array([[r.get(p, 0.0) for p in POOLS] for r in rounds], dtype=np.float64)
        self.alpha = alpha
        self.observations = 0
        # Running mean absolute relative error of the predictions made at decision time.
        self._lat_err = 0.0
        self._tok_err = 0.0

    def queue_s(self, delays: dict[str, float]) -> np.ndarray:
        """[S] queueing delay each strategy would wait: its rounds on each pool x the pool's delay."""
        d = np.array([max(0.0, float(delays.get(p, 0.0))) for p in POOLS])
        return self.rounds @ d

    def predict(self, delays: dict[str, float] | None = None,
                queue_floor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tokens [S], total latency [S], queue part [S]) under the given pool delays; the
        queue is at least `queue_floor` [S] (the in-flight estimate) where given."""
        q = self.queue_s(delays or {})
        if queue_floor is not None:
            q = np.maximum(q, queue_floor)
        return self.tokens.copy(), self.service_s + q, q

    def spread_s(self, queue_s=0.0) -> np.ndarray:
        """[S] standard deviation of each strategy's served latency around its prediction,
        under predicted queues `queue_s` (scalar or [S])."""
        q = np.asarray(queue_s, dtype=np.float64)
        return np.sqrt(self.service_var + self.queue_rel_var * q * q)

    def tail_margin_s(self, z: float, queue_s=0.0) -> np.ndarray:
        """[S] seconds to add to a predicted latency for its upper tail: z spreads."""
        return z * self.spread_s(queue_s)

    def observe(self, sid: str, tokens: float, latency_s: float, predicted_tokens: float,
                predicted_latency_s: float, queue_s: float = 0.0, rounds: dict[str, float] | None = None) -> None:
        """One served request: `latency_s` as observed, `queue_s` the queue part predicted for it.
        The service estimate follows observed - predicted queue (at least a tenth of the
        observation, so a queue overestimate cannot drive it to zero), and only where the
        predicted queue is under half the observation: the queue's own scale is learned from
        the rest (QueueModel.learn), and both learning from one residual would drift. The
        service spread learns with the service estimate (from its deviation before the
        update); the queue's relative spread from requests whose predicted queue is at least
        half their service estimate."""
        j = self.index[sid]
        a = self.alpha
        q = float(queue_s)
        if q >= 0.5 * float(self.service_s[j]) and q > 0:
            late = max(0.0, float(latency_s) - float(predicted_latency_s)) / q
            self.queue_rel_var += a * (min(2.0 * late * late, self.max_rel_sd ** 2) - self.queue_rel_var)
        if q <= 0.5 * float(latency_s):
            service = max(float(latency_s) - q, 0.1 * float(latency_s))
            dev = service - self.service_s[j]
            self.service_var[j] += a * (dev * dev - self.service_var[j])
            self.service_s[j] += a * dev
        self.tokens[j] += a * (float(tokens) - self.tokens[j])
        if rounds:
            for k, p in enumerate(POOLS):
                if p in rounds:
                    self.rounds[j, k] += a * (float(rounds[p]) - self.rounds[j, k])
        self.observations += 1
        n = self.observations
        self._lat_err += (abs(predicted_latency_s - latency_s) / max(latency_s, 1e-9) - self._lat_err) / n
        self._tok_err += (abs(predicted_tokens - tokens) / max(tokens, 1.0) - self._tok_err) / n

    def errors(self) -> dict:
        return {"observations": self.observations, "latency_mean_relative_error": self._lat_err,
                "tokens_mean_relative_error": self._tok_err}

    def table(self) -> list[dict]:
        sd = self.spread_s()
        return [{"strategy": s, "service_latency_s": float(self.service_s[j]), "service_sd_s": float(sd[j]),
                 "tokens": float(self.tokens[j]),
                 **{f"{p}_rounds": float(self.rounds[j, k]) for k, p in enumerate(POOLS)}}
                for j, s in enumerate(self.ids)]


@dataclass
class PoolStats:
    """One pool's live stats: work pending in it now, and cumulative work done and seconds
    busy (tokens for the policy pool, step scorings for the PRM pool)."""

    pending_work: float
    work_done: float
    busy_s: float


class QueueModel:
    """Queueing delay per pool = pending work / the rate the pool works at when busy.

    The rate is work done over busy seconds between polls (at least `min_busy_s` apart),
    smoothed: recent throughput would measure what the traffic asked, not what the pool
    can do. Until a pool has a rate, it claims no delay (a cold pool would shed everything).

    Pending work / rate is the drain time of everything in flight, whole calls counted until
    they end, at the rate small batches reach; under continuous batching a new request shares
    the batch and waits less than that. So the delays are scaled by `scale`, learned online
    (`learn`) from what requests observe beyond their service time, as InFlight learns beta."""

    def __init__(self, pools=POOLS, alpha: float = 0.3, min_busy_s: float = 0.5, scale: float = 1.0,
                 scale_alpha: float = 0.1, scale_bounds: tuple[float, float] = (0.05, 2.0),
                 min_learn_s: float = 0.05):
        self.alpha, self.min_busy_s = alpha, min_busy_s
        self.scale, self.scale_alpha, self.scale_bounds, self.min_learn_s = scale, scale_alpha, scale_bounds, min_learn_s
        self.rate = {p: None for p in pools}
        self.delay_s = {p: 0.0 for p in pools}
        self.polled_at = {p: None for p in pools}
        self._ref: dict[str, tuple[float, float]] = {}

    def update(self, pool: str, stats: PoolStats, now: float | None = None) -> float:
        """Take one poll of `pool` (at time `now`, for the drain); returns its delay then."""
        self.polled_at[pool] = now
        ref = self._ref.get(pool)
        if ref is None or stats.busy_s < ref[1] or stats.work_done < ref[0]:  # first poll or a restart
            self._ref[pool] = (stats.work_done, stats.busy_s)
        elif stats.busy_s - ref[1] >= self.min_busy_s:
            sample = (stats.work_done - ref[0]) / (stats.busy_s - ref[1])
            if sample > 0:
                old = self.rate.get(pool)
                self.rate[pool] = sample if old is None else old + self.alpha * (sample - old)
            self._ref[pool] = (stats.work_done, stats.busy_s)
        rate, pending = self.rate.get(pool), max(0.0, float(stats.pending_work))
        self.delay_s[pool] = pending / rate if rate and pending > 0 else 0.0
        return self.delay_s[pool]

    def delays(self, now: float | None = None, raw: bool = False) -> dict[str, float]:
        """Each pool's delay at its last poll, drained by the time since (when `now` is given),
        times the learned scale (unless `raw`)."""
        k = 1.0 if raw else self.scale
        if now is None:
            return {p: k * d for p, d in self.delay_s.items()}
        return {p: k * max(0.0, d - (now - self.polled_at[p] if self.polled_at[p] is not None else 0.0))
                for p, d in self.delay_s.items()}

    def learn(self, excess_s: float, raw_queue_s: float) -> None:
        """One served request: it waited `excess_s` beyond its service time where the raw
        (unscaled) pool delays predicted `raw_queue_s`; too small a prediction teaches nothing."""
        if raw_queue_s < self.min_learn_s:
            return
        lo, hi = self.scale_bounds
        sample = min(hi, max(lo, float(excess_s) / float(raw_queue_s)))
        self.scale += self.scale_alpha * (sample - self.scale)

    def age_s(self, now: float) -> float:
        """Seconds since the oldest pool's last poll (inf before every pool was polled)."""
        ts = list(self.polled_at.values())
        return math.inf if None in ts else now - min(ts)


@dataclass
class Job:
    """One request the router runs: when it started, its predicted service seconds (alone)
    and total seconds, and the interference it was predicted to meet (for learning beta)."""

    started: float
    service_s: float
    total_s: float
    interference_s: float


class InFlight:
    """Delay from the requests already running, in the processor-sharing view: a job of x
    alone-seconds that joins jobs with r_i alone-seconds left finishes after about
    x + sum_i min(r_i, x) (it shares with each until that one ends, or until it ends).
    Batching makes sharing cheaper than that on an engine, by a factor `beta` learned
    online from what requests observe. r_i is a job's service times the share of its
    predicted total latency not yet elapsed (at least `min_left`: a late job still runs)."""

    def __init__(self, beta: float = 0.5, alpha: float = 0.2, min_left: float = 0.1, max_beta: float = 4.0):
        self.beta, self.alpha, self.min_left, self.max_beta = beta, alpha, min_left, max_beta
        self.jobs: dict[int, Job] = {}
        self._next = 0

    def remaining(self, now: float) -> np.ndarray:
        return np.array([j.service_s * max(self.min_left, 1.0 - (now - j.started) / max(j.total_s, 1e-9))
                         for j in self.jobs.values()], dtype=np.float64)

    def interference(self, service_s: np.ndarray, now: float) -> np.ndarray:
        """[S] alone-seconds each strategy would share with the running jobs."""
        x = np.asarray(service_s, dtype=np.float64)
        r = self.remaining(now)
        if not len(r):
            return np.zeros_like(x)
        return np.minimum(r[None, :], x[:, None]).sum(axis=1)

    def delay(self, service_s: np.ndarray, now: float) -> np.ndarray:
        return self.beta * self.interference(service_s, now)

    def start(self, now: float, service_s: float, total_s: float, interference_s: float) -> int:
        key, self._next = self._next, self._next + 1
        self.jobs[key] = Job(now, float(service_s), float(total_s), float(interference_s))
        return key

    def finish(self, key: int, observed_s: float | None = None) -> None:
        """Drop a job; with its observed latency, learn beta = (observed - service) / interference."""
        job = self.jobs.pop(key, None)
        if job is None or observed_s is None or job.interference_s < 1e-3:
            return
        sample = min(self.max_beta, max(0.0, (float(observed_s) - job.service_s) / job.interference_s))
        self.beta += self.alpha * (sample - self.beta)


def learn_queue(queues: QueueModel, running: InFlight, key: int | None, excess_s: float,
                raw_queue_s: float | None, observed_s: float) -> str | None:
    """Teach the queue estimate from one served request: it waited `excess_s` beyond its
    service time, where the pools predicted `raw_queue_s` (unscaled) and the in-flight set
    its job's interference. The served queue is max(kappa x pool term, beta x in-flight
    term); if both learned from every residual, the max of two terms each fitted to the
    excess would overestimate it whenever their errors differ. So only the term that set the prediction learns; a term that overestimates keeps
    setting it until it has learned down, one that underestimates stays hidden behind the
    other, which covers the excess. Drops the job from the in-flight set either way; returns
    which term learned ("pool", "in_flight" or None)."""
    job = running.jobs.get(key) if key is not None else None
    pool = queues.scale * raw_queue_s if raw_queue_s is not None else None
    in_flight = running.beta * job.interference_s if job is not None else None
    if pool is not None and (in_flight is None or pool >= in_flight):
        queues.learn(excess_s, raw_queue_s)
        if key is not None:
            running.finish(key)
        return "pool"
    if key is not None:
        running.finish(key, observed_s)
    return "in_flight" if job is not None else None


@dataclass
class Verdict:
    """A strategy to run, or (index None) a shed with the seconds after which to retry."""

    index: int | None
    tokens: np.ndarray
    latency_s: np.ndarray
    queue_s: np.ndarray
    feasible: bool
    retry_after_s: int | None = None
    reason: str = ""
    preference_fit: bool | None = None  # the choice met the preferences (None: none applied)
    soft_budget_s: float | None = None  # the soft budget the decision was given


def retry_after(excess_s: float, max_s: int = 30) -> int:
    """Whole seconds (HTTP Retry-After) until a request may fit: the predicted excess over
    the budget, at least 1 and at most `max_s` (a client should come back, not give up)."""
    if not math.isfinite(excess_s):
        return max_s
    return int(min(max_s, max(1, math.ceil(excess_s))))


def shed_wait(latency_s: float, queue_s: float, budget_s: float) -> float:
    """Seconds to wait before a strategy predicted at `latency_s` may fit `budget_s`:
    waiting helps only with the queue part, so retry once the queue has drained by the excess."""
    excess = latency_s - budget_s
    return min(excess, queue_s) if queue_s > 0 else excess


class CongestionPrice:
    """A latency price that integrates congestion over time (dual ascent on the queue).

    Judging each request on its own budget is myopic: a slow strategy that fits still delays
    every request it shares the engines with, and under a sustained overload the queue then
    sheds the later ones. A price proportional to the queue of the moment (tried in session
    8) oscillates: the instant the queue empties the price is 0, expensive strategies come
    back and rebuild it. This one remembers: with pressure p = unavoidable queue / budget,
    price += gain x dt x (p - target), kept within [0, max_price]. Under a load the engines
    cannot serve at the unpriced mix, it settles where the queue hovers at `target` of the
    budget, which is where the chosen mix's work matches the engines' capacity; once the
    load falls it decays at gain x target per second. The price is dimensionless: the
    latency weight rises by price / budget (a whole budget of latency costs `price`
    accuracy).

    `resource` says what the price is charged on. "latency": the request's own latency.
    "work": the engine work it takes, its tokens, counted in seconds of the policy pool's
    capacity (tokens / the pool's busy throughput), so a whole budget of that capacity costs
    `price` accuracy. The queue grows with total work, not with any one request's latency, so
    work is the constraint's own resource: under it a token-cheap but sequential strategy
    (verified escalation: one sample, a second stage only when the PRM doubts it) stays in the
    mix, where a latency price would push every request to the fewest samples."""

    RESOURCES = ("latency", "work")

    # A reading's pressure saturates (four budgets of queue: shed either way), so one request
    # with an absurdly small budget cannot throw the price every request shares to its cap.
    MAX_PRESSURE = 4.0
    # Budgets and rates below these are treated as these in the weights: the added lambdas
    # stay finite (such a request is shed, since nothing fits its budget).
    MIN_BUDGET_S, MIN_RATE = 1e-3, 1e-6

    def __init__(self, gain: float, target: float = 0.25, max_price: float = 10.0, max_step_s: float = 1.0,
                 resource: str = "latency"):
        if gain < 0 or not 0 <= target or max_price < 0:
            raise ValueError(f"congestion price needs gain >= 0, target >= 0, max_price >= 0; "
                             f"got {gain}, {target}, {max_price}")
        if resource not in self.RESOURCES:
            raise ValueError(f"congestion price resource must be one of {self.RESOURCES}, got {resource!r}")
        self.gain, self.target, self.max_price, self.max_step_s = gain, target, max_price, max_step_s
        self.resource = resource
        self.price = 0.0
        self._t: float | None = None

    def update(self, pressure: float, now: float) -> float:
        """Take one reading of the pressure at time `now`; returns the price then. A reading
        after a long gap counts for at most `max_step_s` of rise (but decays fully)."""
        if self._t is not None and self.gain > 0:
            dt = max(0.0, now - self._t)
            err = min(float(pressure), self.MAX_PRESSURE) - self.target
            step = self.gain * (min(dt, self.max_step_s) if err > 0 else dt) * err
            self.price = min(self.max_price, max(0.0, self.price + step))
        self._t = now
        return self.price

    def weights(self, budget_s: float, tokens_per_s: float | None = None) -> tuple[float, float]:
        """(added lambda_tokens, added lambda_latency) at the current price for a request with
        this budget. Work is priced once the policy pool's throughput is known; before that
        (a cold pool) on latency, the only scale there is."""
        budget_s = max(float(budget_s), self.MIN_BUDGET_S)
        if self.resource == "work" and tokens_per_s and tokens_per_s > 0:
            return self.price / (budget_s * max(float(tokens_per_s), self.MIN_RATE)), 0.0
        return 0.0, self.price / budget_s


def _fastest(checked: np.ndarray, tokens: np.ndarray, budget_s: float | None, max_tokens: float | None,
             allowed: np.ndarray | None) -> int | None:
    """The strategy with the least checked latency among those `select` would let compete, or
    None when none fits."""
    fits = fitting(tokens, checked, max_tokens, budget_s, allowed)
    if not fits.any():
        return None
    return int(np.flatnonzero(fits)[np.argmin(checked[fits])])


def _preferred(lat: np.ndarray, checked: np.ndarray, budget_s: float | None, soft_budget_s: float | None,
               guard_scale: float) -> np.ndarray | None:
    """[S] strategies within the budget that also meet the preferences, or None when none applies."""
    prefer, applies = np.ones(len(lat), dtype=bool), False
    if soft_budget_s is not None and (budget_s is None or soft_budget_s < budget_s):
        prefer &= lat <= soft_budget_s  # Little's law bounds the mean
        applies = True
    if budget_s is not None and guard_scale < 1.0:
        prefer &= checked <= guard_scale * budget_s
        applies = True
    if not applies:
        return None
    return prefer & (checked <= budget_s) if budget_s is not None else prefer


def choose_or_shed(acc: np.ndarray, costs: OnlineCosts, delays: dict[str, float], lambda_tokens: float = 0.0,
                   lambda_latency: float = 0.0, max_tokens: float | None = None,
                   budget_s: float | None = None, queue_floor: np.ndarray | None = None,
                   allowed: np.ndarray | None = None, congestion: CongestionPrice | None = None,
                   now: float = 0.0, tokens_per_s: float | None = None, tail_budget_s: float | None = None,
                   tail_z: float = 0.0, soft_budget_s: float | None = None, guard_scale: float = 1.0) -> Verdict:
    """For one query (acc: [S] predicted accuracy), the utility argmax among strategies
    predicted to fit the token and latency budgets, with served latency = service + queue.
    Without a latency budget nothing is shed. A token budget that nothing fits falls back to
    the cheapest strategy (as `select` does); a latency budget that nothing fits sheds.

    `budget_s` bounds the predicted mean; with `tail_budget_s` (the SLO's p95) a strategy
    must also have latency + tail_z x its spread (`OnlineCosts.spread_s`, the queue's part
    included) within that: one whose mean fits but whose slow requests would not
    (escalation, beam under a queue) yields to one that fits both.

    With a budget and a `congestion` price, this request's pressure (the least any strategy
    would wait, as a share of the budget) updates the price, which raises the latency weight
    or the token weight (`CongestionPrice.weights`; tokens_per_s: the policy pool's busy
    throughput); without a budget there is no pressure to price, nor with one that no strategy
    would meet on idle engines (it is shed, and its pressure would be noise of its own making).

    Two preferences narrow the choice but never shed: `soft_budget_s` (the admission limit's
    budget, `probe.concurrency`) on the predicted mean, and `guard_scale` < 1 (the SLO guard,
    `probe.tail_guard`) on the checked latency, which must then fit guard_scale x `budget_s`.
    The choice is made among strategies within the budgets that meet them; when none does, the
    fastest strategy within `budget_s` is served."""
    tok, lat, queue = costs.predict(delays, queue_floor)
    if budget_s is not None and congestion is not None and len(queue):
        if budget_s >= float(costs.service_s.min()):  # a budget nothing meets alone says nothing of the queue
            congestion.update(max(0.0, float(queue.min())) / budget_s, now)
        d_tokens, d_latency = congestion.weights(budget_s, tokens_per_s)
        lambda_tokens, lambda_latency = lambda_tokens + d_tokens, lambda_latency + d_latency
    # The latency the budget is checked on: the mean, or where a tail budget is set, the larger
    # of the mean and the tail rescaled to the mean's budget (one comparison checks both).
    checked = lat
    if budget_s is not None and tail_budget_s is not None and tail_z > 0:
        tail = lat + costs.tail_margin_s(tail_z, queue)
        checked = np.maximum(lat, tail * (budget_s / max(float(tail_budget_s), CongestionPrice.MIN_BUDGET_S)))
    sel = select(acc[None, :], tok, lat, lambda_tokens, lambda_latency, max_tokens, budget_s, allowed,
                 budget_latency=checked)
    j, preference_fit = int(sel.index[0]), None
    prefer = _preferred(lat, checked, budget_s, soft_budget_s, guard_scale)
    if prefer is not None:  # the utility argmax where the preferences hold, else the fastest that fits
        soft = select(acc[None, :], tok, lat, lambda_tokens, lambda_latency, max_tokens, 1.0, allowed,
                      budget_latency=np.where(prefer, 0.0, np.inf))  # 0 / inf against 1: the mask itself
        fastest = None if soft.feasible[0] else _fastest(checked, tok, budget_s, max_tokens, allowed)
        j = int(soft.index[0]) if soft.feasible[0] else (j if fastest is None else fastest)
        preference_fit = bool(soft.feasible[0])
    if budget_s is None or checked.min() <= budget_s:  # an excluded strategy fitting alone is served, not shed
        return Verdict(j, tok, lat, queue, bool(sel.feasible[0]), preference_fit=preference_fit,
                       soft_budget_s=soft_budget_s)
    k = int(np.argmin(checked))
    wait = shed_wait(float(checked[k]), float(queue[k]), budget_s)
    tail_part = (f", {tail[k]:.3g} s at its tail against {tail_budget_s:.3g} s"
                 if checked is not lat else "")
    reason = (f"no strategy is predicted to finish within {budget_s:.3g} s: the fastest, {costs.ids[k]}, "
              f"is predicted {lat[k]:.3g} s ({queue[k]:.3g} s of it queueing: engine pools "
              f"{costs.queue_s(delays)[k]:.3g} s, running requests "
              f"{(queue_floor[k] if queue_floor is not None else 0.0):.3g} s){tail_part}")
    return Verdict(None, tok, lat, queue, False, retry_after(wait), reason)
