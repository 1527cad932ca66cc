"""The version of tracediff (a module of its own: the cache keys read it)."""

__version__ = "0.1.0"
