"""Benchmarks of Capstan against a plain-Temporal baseline measured in the same run; see README.md."""
