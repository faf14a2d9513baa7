"""Decide: what a charter and its cycles do next (pure).

Causes and ranked options, incidents, control charts, and the plans of a reconcile.
"""
