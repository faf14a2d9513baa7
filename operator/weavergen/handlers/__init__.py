"""kopf registrations, thin: parse, gather, pure decision, apply, patch status.

Importing this package registers every handler with kopf.
"""

from weavergen.handlers import charters, cycles, settings

__all__ = ["charters", "cycles", "settings"]
