"""Benchmarks that print figures (`dppo bench`); never timed tests."""
