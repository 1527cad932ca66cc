"""Every primitive, one block each, grouped by kind."""

from . import (  # noqa: F401
    complex,
    control,
    cumulative,
    decompositions,
    elementwise,
    fft,
    indexing,
    linalg,
    reduce,
    region,
    scan,
    shape,
    sorting,
    special,
)
