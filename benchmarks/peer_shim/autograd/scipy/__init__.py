"""autograd.scipy.* is SciPy itself."""
