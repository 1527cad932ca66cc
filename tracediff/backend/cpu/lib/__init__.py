"""Numba functions that generated CPU programs call for library operations
(LAPACK through `np.linalg`, special functions...): one module per family,
imported by a program only when one of its primitives asks (`Primitive.imports`)."""
