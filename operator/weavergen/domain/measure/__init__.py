"""Measure: spans in, health, drift, entropy and the semantic-convention check out (pure)."""
