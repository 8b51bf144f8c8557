"""Benchmarks and reliability runs; each script writes its section of BENCHMARKS.md or RELIABILITY.md."""
