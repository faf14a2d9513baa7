"""The demo workload and load generator (a demo: not part of the operator)."""
