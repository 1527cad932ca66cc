"""Every primitive, one block each, grouped by kind."""

from . import elementwise, indexing, linalg, reduce, region, shape  # noqa: F401
