"""Placeholder: filled in by the log work."""

__all__: list[str] = []
