"""Runtimes, metrics, parity reports. Never imports ``converters`` or training."""
