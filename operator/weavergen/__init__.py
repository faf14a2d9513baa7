"""WeaverGen Regeneration Operator: keeps workloads healthy through DMEDI regeneration cycles."""

__version__ = "0.1.0"
