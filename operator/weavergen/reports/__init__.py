"""Reports for people: a self-contained HTML page of a charter, its control charts and cycles."""

from __future__ import annotations

from weavergen.reports.html import render_report, split_objects

__all__ = ["render_report", "split_objects"]
