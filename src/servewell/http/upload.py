"""A job's multipart upload, streamed to a file as it arrives: the ``file`` part is
written to disk piece by piece (never held whole), within ``jobs.max_upload_bytes``
(413 ``upload_too_large`` past it, whatever ``server.max_body_bytes`` says); the other
parts (``id_column``, ``format``) are small text fields."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from servewell.errors import InvalidInput, UnsupportedMediaType, UploadTooLarge

#: The most a text field (``id_column``, ``format``) may hold.
MAX_FIELD_BYTES = 4096
#: What the multipart envelope may add to the file's bytes (boundaries, part headers).
ENVELOPE_BYTES = 64 * 1024


@dataclass
class Upload:
    """What arrived: whether a ``file`` part did, its file name, the text fields."""

    path: Path
    filename: str | None = None
    has_file: bool = False
    fields: dict[str, str] = field(default_factory=dict)


def check_upload_length(content_length: str | None, limit_bytes: int) -> None:
    """Refuse at once a body its Content-Length says is over the limit."""
    length = int(content_length) if content_length and content_length.isdigit() else 0
    if length > limit_bytes + ENVELOPE_BYTES:
        raise UploadTooLarge(limit_bytes)


async def receive_upload(
    content_type: str, pieces: AsyncIterator[bytes], target: Path, limit_bytes: int
) -> Upload:
    """Parse a ``multipart/form-data`` body into ``target`` (the file part) and fields;
    ``target`` is removed when anything goes wrong."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    media, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(media.decode("latin-1") or "none", "multipart/form-data")
    form = _Form(Upload(target), limit_bytes)
    parser = MultipartParser(boundary, form.callbacks())
    try:
        async for piece in pieces:
            parser.write(piece)
        parser.finalize()
    except MultipartParseError as exc:
        target.unlink(missing_ok=True)
        raise InvalidInput(f"the upload is not valid multipart/form-data: {exc}") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        form.close()
    if not form.upload.has_file:
        target.unlink(missing_ok=True)
        raise InvalidInput("the upload has no 'file' part (multipart/form-data, field 'file')")
    return form.upload


class _Form:
    """The parser's callbacks: headers of each part, then its data to file or field."""

    def __init__(self, upload: Upload, limit_bytes: int) -> None:
        self.upload = upload
        self.limit_bytes = limit_bytes
        self.size = 0
        self._header = bytearray()
        self._value = bytearray()
        self._name: str | None = None
        self._filename: str | None = None
        self._file: IO[bytes] | None = None
        self._text: bytearray | None = None

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._header.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._name = self._filename = None

    def _header_end(self) -> None:
        from python_multipart.multipart import parse_options_header

        if bytes(self._header).lower() == b"content-disposition":
            _, options = parse_options_header(bytes(self._value))
            name, filename = options.get(b"name"), options.get(b"filename")
            self._name = name.decode("utf-8", "replace") if name is not None else None
            self._filename = filename.decode("utf-8", "replace") if filename else None
        self._header.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        if self._name == "file":
            if self.upload.has_file:
                raise InvalidInput("the upload has more than one 'file' part")
            self.upload.has_file = True
            self.upload.filename = self._filename
            self.upload.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.upload.path.open("wb")
        else:
            self._text = bytearray()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self.size += end - start
            if self.size > self.limit_bytes:
                raise UploadTooLarge(self.limit_bytes)
            self._file.write(data[start:end])
        elif self._text is not None:
            self._text.extend(data[start:end])
            if len(self._text) > MAX_FIELD_BYTES:
                raise InvalidInput(f"the field '{self._name}' is over {MAX_FIELD_BYTES} bytes")

    def _end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self._text is not None and self._name is not None:
            self.upload.fields[self._name] = self._text.decode("utf-8", "replace").strip()
        self._text = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
