"""Benchmarks, run on demand (`python -m bench.run_all`), never as timed tests."""
