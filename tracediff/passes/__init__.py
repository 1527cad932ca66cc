"""Passes over the IR: each takes an IR and returns a new one."""
