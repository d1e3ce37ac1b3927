"""The test suite's own machinery: the contained runner behind scripts/test and its pytest plugin."""
