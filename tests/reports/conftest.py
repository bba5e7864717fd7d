"""The training tables' fixtures (tests/training_tables.py), for the tests here."""

from training_tables import csv_file, frame, make_config

__all__ = ["csv_file", "frame", "make_config"]
