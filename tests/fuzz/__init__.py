"""Hypothesis fuzzing of every input path: CloudEvents, the YAML file parsers, query parameters."""
