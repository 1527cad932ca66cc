"""Every primitive, one block each, grouped by kind."""

from . import control, elementwise, indexing, linalg, reduce, region, scan, shape  # noqa: F401
