"""Explore: from a measurement and what is known about the target, ranked remediation options.

1. Features: the indicator types that fired, whether validation found new problems, whether
   errors or latency sit on calls to dependencies, and the target's recent history (a rollout,
   a changed ConfigMap, restarting pods). Their sorted list is the *symptom signature*.
2. Causes: a naive-Bayes model, P(feature | cause) from ``LIKELIHOOD``, gives P(cause | features).
3. Success probability of each strategy: a Beta distribution whose prior mean is
   sum_c P(c | features) * fix(strategy, c) (prior strength ``PRIOR_STRENGTH`` observations),
   updated with the charter's outcome history for the same strategy and signature. For
   ``observe-escalate`` success means "no action could have fixed it": P(unfixable cause).
4. Score = 0.4 success + 0.3 (1 - recovery time / recovery objective) + 0.2 (1 - risk)
   + 0.1 (1 - resources), each against fixed bounds. Options whose success probability is below
   ``MIN_VIABLE_SUCCESS`` rank after the viable ones (a quick, harmless action that will not work
   is no remedy). Both depend on the option alone, so adding an option never reorders the
   others. Ties go to lower risk, then shorter recovery, then the name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from weavergen.api.charter import EntropyLevel
from weavergen.domain.decide.incident import Attempt, failed_fixes, history_text
from weavergen.domain.remedy.strategies import (
    CATALOG,
    CAUSES,
    OBSERVE,
    UNFIXABLE_CAUSES,
    Strategy,
    candidates_for,
)
from weavergen.domain.remedy.vocabulary import DRIFTING_ACTIONS

WEIGHTS = {"success": 0.4, "recovery": 0.3, "risk": 0.2, "resources": 0.1}
PRIOR_STRENGTH = 4.0
MIN_VIABLE_SUCCESS = 0.3
# A fix rated 95% for a cause still fails now and then: one failure never rules a cause out.
MIN_FAILURE_LIKELIHOOD = 0.05
# Added risk of a fix a GitOps controller would revert: it does not hold until committed.
GITOPS_RISK = 0.2

FEATURES = (
    "error_rate_increase",
    "latency_degradation",
    "throughput_drop",
    "retry_storm",
    "semantic_drift",
    "validation",
    "dependency",
    "recent_rollout",
    "config_changed",
    "restarts",
    "untracked_input_changed",
)
# P(feature present | cause), in the order of FEATURES. ``untracked_input_changed``: something
# the workloads consume that the charter does not list (a ConfigMap or Secret they mount or
# read into their environment, their image under its tag) changed since they were last healthy.
# Unrelated inputs change too (feature flags, a rotated certificate): present under every cause,
# it points at one only together with fixes that failed (see ``cause_posterior``).
LIKELIHOOD: dict[str, tuple[float, ...]] = {
    "config_corruption": (0.8, 0.3, 0.2, 0.1, 0.3, 0.3, 0.2, 0.05, 0.95, 0.2, 0.05),
    "memory_leak": (0.5, 0.8, 0.3, 0.1, 0.02, 0.02, 0.05, 0.05, 0.05, 0.9, 0.05),
    "bad_deploy": (0.8, 0.5, 0.3, 0.1, 0.2, 0.2, 0.05, 0.95, 0.05, 0.3, 0.15),
    "semantic_drift_upgrade": (0.2, 0.2, 0.1, 0.05, 0.95, 0.9, 0.02, 0.95, 0.05, 0.05, 0.1),
    "retry_storm_slow_dependency": (0.3, 0.8, 0.3, 0.95, 0.02, 0.02, 0.8, 0.05, 0.05, 0.05, 0.05),
    "failing_downstream_dependency": (
        0.95,
        0.5,
        0.3,
        0.3,
        0.02,
        0.02,
        0.95,
        0.05,
        0.05,
        0.05,
        0.05,
    ),
    "untracked_input_change": (0.6, 0.6, 0.3, 0.05, 0.1, 0.1, 0.05, 0.5, 0.05, 0.2, 0.95),
}
# Kubernetes state of the workloads: P(present | cause) in the order of ``CAUSES``. Evidence
# when present, silent when absent: most faults of every cause crash nothing, so a missing crash
# loop says little, while a present one says much (an OOM kill points at memory, a stalled
# rollout at the release).
WHEN_PRESENT: dict[str, tuple[float, ...]] = {
    "crash_loop": (0.5, 0.1, 0.6, 0.02, 0.03, 0.05, 0.15),
    "oom_killed": (0.05, 0.9, 0.15, 0.01, 0.02, 0.02, 0.05),
    "pods_not_ready": (0.5, 0.4, 0.6, 0.05, 0.2, 0.3, 0.3),
    "rollout_stalled": (0.1, 0.05, 0.9, 0.05, 0.02, 0.02, 0.1),
}


@dataclass(frozen=True)
class TargetContext:
    """What the gatherer knows about the target besides its spans."""

    recent_rollout: bool = False
    config_changed: bool = False
    restarts: bool = False
    workloads: int = 1
    replicas: int = 2
    # Inputs of the workloads outside the charter's targets that changed since they were last
    # healthy, each described for people ("ConfigMap app-runtime (envFrom of Deployment/app),
    # changed 2026-12-03T10:00:00Z").
    changed_inputs: tuple[str, ...] = ()
    # Actions no strategy may take here, each with the reason (``kinds.refused_actions``).
    refused: Mapping[str, str] = field(default_factory=dict)
    # Why changes made in the cluster to the targets would be reverted by a GitOps controller.
    reverted_by: tuple[str, ...] = ()
    # The targets' HorizontalPodAutoscalers (``Kind/namespace/name``).
    autoscalers: tuple[str, ...] = ()


@dataclass(frozen=True)
class StrategyRecord:
    """Past outcomes of one strategy for one signature (from the charter's status)."""

    strategy: str
    signature: str
    successes: int = 0
    failures: int = 0


def features_of(measurement: Mapping[str, Any], context: TargetContext) -> frozenset[str]:
    """The features of a measurement (DESIGN.md 5 JSON) and the target context."""
    indicators = measurement.get("drift_indicators") or []
    found = {i["type"] for i in indicators if i["type"] in FEATURES or i["type"] in WHEN_PRESENT}
    if measurement.get("validation_errors"):
        found.add("validation")
    if any(i.get("evidence", {}).get("on_dependency_calls") for i in indicators):
        found.add("dependency")
    for flag in ("recent_rollout", "config_changed", "restarts"):
        if getattr(context, flag):
            found.add(flag)
    if context.changed_inputs:
        found.add("untracked_input_changed")
    if "crash_loop" in found:
        # A crash loop restarts its pods: those restarts are not the slow leak "restarts" means.
        found.discard("restarts")
    return frozenset(found)


def signature_of(features: Iterable[str]) -> str:
    return "+".join(sorted(features)) or "none"


def cause_posterior(features: frozenset[str], failed: Sequence[str] = ()) -> dict[str, float]:
    """P(cause | features, failed fixes) under a uniform prior over causes.

    Each strategy in ``failed`` was tried in this incident and did not heal it: evidence with
    likelihood P(fails | cause) = 1 - fix(strategy, cause). It weighs nothing against the causes
    no action on the targets fixes, so their share rises with every failed fix.
    """
    log_scores = {}
    for cause, probabilities in LIKELIHOOD.items():
        index = CAUSES.index(cause)
        log_scores[cause] = (
            sum(
                math.log(p if feature in features else 1.0 - p)
                for feature, p in zip(FEATURES, probabilities, strict=True)
            )
            + sum(math.log(WHEN_PRESENT[f][index]) for f in features if f in WHEN_PRESENT)
            + sum(
                math.log(max(MIN_FAILURE_LIKELIHOOD, 1.0 - CATALOG[s].fix_probability(cause)))
                for s in failed
                if s in CATALOG
            )
        )
    top = max(log_scores.values())
    weights = {c: math.exp(s - top) for c, s in log_scores.items()}
    total = sum(weights.values())
    return {c: weights[c] / total for c in CAUSES}


def prior_success(strategy: Strategy, causes: Mapping[str, float]) -> float:
    if strategy.name == OBSERVE:
        return sum(p for c, p in causes.items() if c in UNFIXABLE_CAUSES)
    return sum(p * strategy.fix_probability(c) for c, p in causes.items())


@dataclass(frozen=True)
class SuccessEstimate:
    probability: float
    prior: float
    successes: int
    failures: int


def success_probability(
    strategy: Strategy,
    causes: Mapping[str, float],
    signature: str,
    history: Sequence[StrategyRecord] = (),
) -> SuccessEstimate:
    """Posterior mean of the Beta(prior * k, (1 - prior) * k) updated with the history."""
    prior = min(0.99, max(0.01, prior_success(strategy, causes)))
    mine = [h for h in history if (h.strategy, h.signature) == (strategy.name, signature)]
    wins = sum(h.successes for h in mine)
    losses = sum(h.failures for h in mine)
    alpha = prior * PRIOR_STRENGTH + wins
    beta = (1 - prior) * PRIOR_STRENGTH + losses
    return SuccessEstimate(alpha / (alpha + beta), prior, wins, losses)


class RiskAssessor:
    """Risk in [0, 1]: the strategy's own, raised by a wide blast radius or no redundancy."""

    def assess(self, strategy: Strategy, context: TargetContext) -> tuple[float, list[str]]:
        risk, why = strategy.risk, [f"base risk {strategy.risk:.2f} ({strategy.blast_radius})"]
        if strategy.mutating and context.replicas <= 1:
            risk += 0.15
            why.append("+0.15: a single replica means the change interrupts service")
        if strategy.mutating and context.workloads > 1:
            extra = min(0.2, 0.05 * (context.workloads - 1))
            risk += extra
            why.append(f"+{extra:.2f}: {context.workloads} workloads are touched")
        if context.reverted_by and DRIFTING_ACTIONS & set(strategy.actions):
            risk += GITOPS_RISK
            why.append(
                f"+{GITOPS_RISK:.2f}: {context.reverted_by[0]}: a change Git does not hold would "
                "be reverted, so it holds only once committed (enforce waits for approval)"
            )
        if context.autoscalers and "scale_workloads" in strategy.actions:
            why.append(
                f"scales through {', '.join(context.autoscalers)}: raises its minReplicas "
                "(restored on rollback) rather than fight it"
            )
        return min(1.0, risk), why


class ResourceEstimator:
    """Resource cost in [0, 1]: the strategy's own, scaled with the pods it creates."""

    def estimate(self, strategy: Strategy, context: TargetContext) -> float:
        if not strategy.mutating:
            return strategy.resources
        return min(1.0, strategy.resources * (1 + 0.05 * max(0, context.replicas - 2)))


@dataclass(frozen=True)
class Option:
    """A ranked remediation option and why it ranked where it did."""

    rank: int
    strategy: str
    score: float
    success_probability: float
    recovery_time_seconds: float
    risk: float
    resource_cost: float
    reasons: list[str] = field(default_factory=list)

    def as_status(self) -> dict[str, Any]:
        """The cycle status form (camelCase), as api.cycle.RankedOption expects."""
        return {
            "rank": self.rank,
            "strategy": self.strategy,
            "score": round(self.score, 4),
            "successProbability": round(self.success_probability, 4),
            "recoveryTimeSeconds": self.recovery_time_seconds,
            "risk": round(self.risk, 4),
            "resourceCost": round(self.resource_cost, 4),
            "reasons": self.reasons,
        }


@dataclass(frozen=True)
class Exploration:
    signature: str
    features: frozenset[str]
    causes: dict[str, float]
    options: list[Option]
    excluded: dict[str, str]
    escalation: str = ""  # what an escalation would tell people, should one be chosen
    suspects: tuple[str, ...] = ()

    @property
    def best(self) -> Option:
        return self.options[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "signature": self.signature,
            "features": sorted(self.features),
            "causes": {c: round(p, 4) for c, p in self.causes.items()},
            "options": [o.as_status() for o in self.options],
            "excluded": self.excluded,
            "escalation": {"reason": self.escalation, "suspects": list(self.suspects)},
        }


def score(success: float, recovery: float, objective: float, risk: float, res: float) -> float:
    """The weighted sum, each criterion normalised against a fixed bound."""
    recovery_score = 1.0 - min(1.0, recovery / objective)
    return (
        WEIGHTS["success"] * success
        + WEIGHTS["recovery"] * recovery_score
        + WEIGHTS["risk"] * (1.0 - risk)
        + WEIGHTS["resources"] * (1.0 - res)
    )


def explore(
    measurement: Mapping[str, Any],
    context: TargetContext,
    *,
    recovery_objective_seconds: float = 300.0,
    history: Sequence[StrategyRecord] = (),
    allow: Iterable[str] = (),
    deny: Iterable[str] = (),
    exclude: Mapping[str, str] | None = None,
    level: EntropyLevel | None = None,
    max_failures: int | None = None,
    attempts: Sequence[Attempt] = (),
    max_failed_fixes: int | None = None,
) -> Exploration:
    """Rank the strategies fit for the measured level; ``exclude`` maps names to reasons.

    A strategy that already failed ``max_failures`` times for the same signature is excluded,
    so the operator escalates instead of repeating what does not work. Within an incident
    (``attempts``, its finished cycles) a fix that failed is not tried again, each failure is
    evidence for the causes no fix here removes, and after ``max_failed_fixes`` failed fixes
    only escalating is left.
    """
    features = features_of(measurement, context)
    signature = signature_of(features)
    failed = failed_fixes(attempts)
    causes = cause_posterior(features, [a.strategy for a in failed])
    level = level or EntropyLevel(measurement.get("entropy_level") or "low")
    excluded = _exclusions(
        signature,
        failed,
        history,
        allow=set(allow),
        deny=set(deny),
        exclude=exclude or {},
        max_failures=max_failures,
        max_failed_fixes=max_failed_fixes,
        refused=context.refused,
    )
    candidates = [
        _assess(
            strategy,
            context,
            causes=causes,
            signature=signature,
            history=history,
            objective=recovery_objective_seconds,
        )
        for strategy in candidates_for(level)
        if strategy.name not in excluded
    ]
    return Exploration(
        signature,
        features,
        causes,
        _ranked(candidates),
        excluded,
        escalation_reason(signature, causes, attempts, context.changed_inputs),
        context.changed_inputs,
    )


class _Candidate(NamedTuple):
    """A strategy assessed for ranking; the fields up to ``name`` order the ranking."""

    not_viable: bool
    total: float
    risk: float
    recovery: float
    name: str
    estimate: SuccessEstimate
    cost: float
    reasons: list[str]


def _assess(
    strategy: Strategy,
    context: TargetContext,
    *,
    causes: Mapping[str, float],
    signature: str,
    history: Sequence[StrategyRecord],
    objective: float,
) -> _Candidate:
    """One strategy's score and the reasons behind it. An option unlikely to work is marked not
    viable, so a quick, harmless action that will not fix anything cannot outrank a remedy."""
    estimate = success_probability(strategy, causes, signature, history)
    risk, risk_reasons = RiskAssessor().assess(strategy, context)
    cost = ResourceEstimator().estimate(strategy, context)
    recovery = objective if strategy.name == OBSERVE else strategy.recovery_seconds
    total = score(estimate.probability, recovery, objective, risk, cost)
    viable = strategy.name == OBSERVE or estimate.probability >= MIN_VIABLE_SUCCESS
    reasons = _reasons(
        strategy,
        estimate,
        causes,
        recovery=recovery,
        objective=objective,
        risk=(risk, risk_reasons),
        cost=cost,
    )
    if not viable:
        reasons.append(
            f"not viable: success {estimate.probability:.2f} < {MIN_VIABLE_SUCCESS:.2f}, "
            "ranked after the viable options"
        )
    return _Candidate(not viable, total, risk, recovery, strategy.name, estimate, cost, reasons)


def _ranked(candidates: Sequence[_Candidate]) -> list[Option]:
    """The candidates as options, best first, each saying how far it is behind the best."""
    ordered = sorted(
        candidates, key=lambda c: (c.not_viable, -round(c.total, 9), c.risk, c.recovery, c.name)
    )
    options = []
    for rank, c in enumerate(ordered, 1):
        place = (
            "ranked 1: highest weighted score"
            if rank == 1
            else f"ranked {rank}: {ordered[0].total - c.total:+.3f} against {ordered[0].name}"
        )
        options.append(
            Option(
                rank,
                c.name,
                c.total,
                c.estimate.probability,
                c.recovery,
                c.risk,
                c.cost,
                [*c.reasons, place],
            )
        )
    return options


def _exclusions(
    signature: str,
    failed: Sequence[Attempt],
    history: Sequence[StrategyRecord],
    *,
    allow: set[str],
    deny: set[str],
    exclude: Mapping[str, str],
    max_failures: int | None,
    max_failed_fixes: int | None,
    refused: Mapping[str, str],
) -> dict[str, str]:
    """The strategies not to rank, each with the reason."""
    excluded = dict(exclude)
    for attempt in failed:
        excluded.setdefault(
            attempt.strategy,
            f"{attempt.outcome} in this incident ({attempt.cycle}): not tried again until the "
            "evidence changes",
        )
    if max_failed_fixes is not None and len(failed) >= max_failed_fixes:
        for s in CATALOG.values():
            if s.name != OBSERVE:
                excluded.setdefault(
                    s.name,
                    f"{len(failed)} fixes failed in this incident (the limit is "
                    f"{max_failed_fixes}): escalating instead",
                )
    for s in CATALOG.values():
        why = [refused[a] for a in s.actions if a in refused]
        if why:
            excluded.setdefault(s.name, f"not here: {why[0]}")
    for h in history:
        if max_failures and h.signature == signature and h.failures >= max_failures:
            excluded.setdefault(
                h.strategy, f"failed {h.failures} times for these symptoms: not tried again"
            )
    for s in CATALOG.values():
        if s.name == OBSERVE:
            continue
        if allow and s.name not in allow:
            excluded.setdefault(s.name, "not in the charter's allow list")
        elif s.name in deny:
            excluded.setdefault(s.name, "in the charter's deny list")
    return excluded


def escalation_reason(
    signature: str,
    causes: Mapping[str, float],
    attempts: Sequence[Attempt],
    changed_inputs: Sequence[str],
) -> str:
    """Why nothing here can fix it, for people: the likely causes, what was tried, and what
    outside the charter's targets changed lately (the likely culprit when fixes fail)."""
    likely = sorted(causes.items(), key=lambda kv: -kv[1])[:2]
    unfixable = sum(p for c, p in causes.items() if c in UNFIXABLE_CAUSES)
    parts = [
        f"symptoms {signature}",
        "likely causes "
        + ", ".join(f"{c} {p:.2f}" for c, p in likely)
        + f" (unfixable by acting on the targets: {unfixable:.2f})",
    ]
    if attempts:
        parts.append(f"tried in this incident: {history_text(attempts)}")
    if changed_inputs:
        parts.append(
            "changed since last healthy, outside the charter's targets: "
            + "; ".join(changed_inputs)
        )
    return "; ".join(parts)


def _reasons(
    strategy: Strategy,
    estimate: SuccessEstimate,
    causes: Mapping[str, float],
    *,
    recovery: float,
    objective: float,
    risk: tuple[float, list[str]],
    cost: float,
) -> list[str]:
    likely = sorted(causes.items(), key=lambda kv: -kv[1])[:2]
    cause_text = ", ".join(f"{c} {p:.2f}" for c, p in likely)
    history = (
        f"; history {estimate.successes} succeeded / {estimate.failures} failed"
        if estimate.successes or estimate.failures
        else ""
    )
    return [
        f"success {estimate.probability:.2f} (prior {estimate.prior:.2f} from likely causes: "
        f"{cause_text}{history})",
        f"recovery ~{recovery:.0f}s of a {objective:.0f}s objective",
        f"risk {risk[0]:.2f}: " + "; ".join(risk[1]),
        f"resources {cost:.2f}",
        strategy.summary,
    ]
