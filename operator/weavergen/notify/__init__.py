"""Delivering notifications to the sinks the operator is configured with (``delivery``)."""
