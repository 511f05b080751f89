"""Benchmarks: `make bench` runs each module's `main()` and writes docs/benchmarks.md."""
