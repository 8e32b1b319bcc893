"""A synthetic in-process device: no protocol, deterministic signals, for core tests and benchmarks."""
