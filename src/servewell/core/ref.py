"""Model references: ``name``, ``name@3``, ``name@production``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from servewell.errors import InvalidReference, NotFound

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}\Z")

DEFAULT_ALIAS = "production"
MAX_VERSION = 2**31 - 1  # the registry's version column is a 32-bit integer


def parse_version(text: str) -> int | None:
    """The version number ``text`` spells (ASCII digits, 1 to MAX_VERSION), else None.

    ``str.isdigit`` alone is not enough: it accepts '²', which ``int`` refuses.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_VERSION else None


def version_in_path(model: str, text: str) -> int:
    """The version number a URL path names for ``model``; NotFound (404) for anything
    that is not one (the path's resource does not exist)."""
    number = parse_version(text)
    if number is None:
        raise NotFound(
            f"model '{model}' has no version '{text}'; "
            f"versions are numbers from 1 to {MAX_VERSION}",
            model=model,
        )
    return number


def check_name(name: str) -> str:
    """A model name: letters, digits, '.', '_' and '-', starting with a letter or digit."""
    if not _NAME.match(name):
        raise InvalidReference(
            name,
            "a model name is 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return name


def check_alias(alias: str) -> str:
    """An alias starts with a letter, so it can never be mistaken for a version number."""
    if not _ALIAS.match(alias):
        raise InvalidReference(
            alias, "an alias is 1-64 letters, digits, '.', '_' or '-', starting with a letter"
        )
    return alias


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What a user asked for. Exactly one of ``version`` and ``alias`` may be set;
    neither means "the production alias, else the latest version"."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        name, sep, selector = text.strip().partition("@")
        check_name(name)
        if not sep:
            return cls(name)
        if not selector:
            raise InvalidReference(text, "nothing after '@'")
        if selector.isascii() and selector.isdigit():
            version = parse_version(selector)
            if version is None:
                raise InvalidReference(text, f"versions start at 1 and are at most {MAX_VERSION}")
            return cls(name, version=version)
        return cls(name, alias=check_alias(selector))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name
