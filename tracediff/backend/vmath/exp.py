"""Placeholder: filled in by the exp work."""

__all__: list[str] = []
