"""Keptn's specification as pure Python: events, shipyards and the rules between them.

Nothing in this package performs I/O or imports another Capstan package, so that workflows,
activities and the gateway can all share one implementation of the spec.
"""
