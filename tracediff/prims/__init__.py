"""Every primitive, one block each, grouped by kind."""

from . import complex, control, elementwise, indexing, linalg, reduce, region, scan, shape  # noqa: F401
