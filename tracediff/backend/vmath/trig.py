"""Placeholder: filled in by the trig work."""

__all__: list[str] = []
