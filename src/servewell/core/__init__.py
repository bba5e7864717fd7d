"""Pure domain: signatures and their validation, V2 datatypes, model references. No I/O.

Import each module itself (``servewell.core.ref``, ``servewell.core.signature``, ...):
this file imports none of them, so that a command needing only a model reference does
not load NumPy and pydantic with the validation code.
"""
