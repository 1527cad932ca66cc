"""scipy.stats distributions on traced arrays."""
