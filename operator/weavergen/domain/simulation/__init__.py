"""Simulation: known faults on synthetic systems, and a digital twin of a target (pure).

They grade the pipeline on causes that are known.
"""
