"""``python -m capstan``: the same as the ``capstan`` command."""

from capstan.cli import app

app(prog_name="capstan")
