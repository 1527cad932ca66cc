"""Every primitive, one block each, grouped by kind."""

from . import control, elementwise, indexing, linalg, reduce, region, shape, tape  # noqa: F401
