"""Dev-only helpers for the test folders and the benchmarks: real services, child processes (`services`)."""
