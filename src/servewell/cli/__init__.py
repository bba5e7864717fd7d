"""The ``servewell`` command: one module per command or command group, joined in ``app``.

Command modules import what a command needs inside the command (the types of their
signatures under ``TYPE_CHECKING``): ``servewell --help``, every command, and every
``serve --workers N`` process (multiprocessing's spawn re-runs the ``servewell`` script)
import all of them first. ``tests/test_startup_imports.py`` holds them to it.
"""
