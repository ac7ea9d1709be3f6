"""Dev-only helpers for every test folder and the benchmarks: real services and child processes (`services`)."""
