"""A self-signed certificate for 127.0.0.1, for tests of TLS clients against loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed(pem: Path) -> Path:
    """Write a certificate for 127.0.0.1 and its key, both in ``pem``; return ``pem``."""
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(pem), "-out", str(pem),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return pem
