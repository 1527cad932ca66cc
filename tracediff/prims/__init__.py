"""Every primitive, one block each, grouped by kind."""

from . import elementwise, indexing, linalg, reduce, shape  # noqa: F401
