"""Remedy: the strategies and their actions on manifests (pure).

Snapshots, and the port a target is acted on through.
"""
