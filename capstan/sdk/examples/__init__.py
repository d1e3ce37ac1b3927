"""Runnable example integrations built on :mod:`capstan.sdk`."""
