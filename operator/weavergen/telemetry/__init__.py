"""Telemetry in and out: the OTLP/HTTP receiver (later also tracing and metrics)."""
