"""scipy.signal convolutions on traced arrays."""
