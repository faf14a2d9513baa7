"""Sequential verification against the fixed settle, on the simulator: same scenarios, same
seeds, once with each. Prints, for both, how often a cycle was verified as succeeded while its
fault was still there (false pass), how often a fixable fault was healed, and how long the
settle after the fix lasted (simulated seconds). Asserts nothing.

Run: .venv/bin/python -m benchmarks.verification [--scenarios 300] [--seed 2026]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from benchmarks.progress import log
from weavergen.phases.simulate import SimulationEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rows = []
    for sequential in (False, True):
        name = "sequential" if sequential else "fixed settle"
        log(f"{name}: {args.scenarios} scenarios")
        started = time.perf_counter()
        engine = SimulationEngine(seed=args.seed, sequential=sequential)
        summary = engine.run(args.scenarios).summary()
        rows.append((name, summary, time.perf_counter() - started))
    print(f"{args.scenarios} scenarios, seed {args.seed} (settle at most the profile's seconds)")
    print(
        f"{'':<14}{'false pass':>12}{'succeeded':>11}{'rolled back':>13}"
        f"{'succeeded (fixable)':>21}{'settle s (mean)':>17}"
    )
    for name, summary, _ in rows:
        outcomes = Counter[str]()
        for per_cause in summary["per_cause"].values():
            outcomes.update(per_cause)
        print(
            f"{name:<14}{_pct(summary['false_pass_rate']):>12}{outcomes['succeeded']:>11}"
            f"{outcomes['rolled_back']:>13}{_pct(summary['success_rate']):>21}"
            f"{summary['average_settle_seconds']:>17.1f}"
        )


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.1%}"


if __name__ == "__main__":
    main()
