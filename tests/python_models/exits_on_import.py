"""Ends the process with exit status 17 the moment it is imported: whatever runs it
shows by dying so (a check that code is not run before it should be)."""

import os

os._exit(17)
