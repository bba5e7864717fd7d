"""Pick the runtime for an artifact's format."""

from __future__ import annotations

from pathlib import Path

from servewell.core.signature import Signature
from servewell.errors import InvalidArtifact, UnsupportedFormat
from servewell.runtime.base import Runtime
from servewell.settings import RuntimeSettings

#: Registered formats and the file suffixes that name them.
FORMATS: dict[str, tuple[str, ...]] = {
    "onnx": (".onnx",),
    "sklearn": (".joblib", ".pkl", ".pickle"),
    # An .onnx file with its tokenizer embedded (runtime/text.py); never guessed from the
    # suffix, which it shares with plain ONNX: register it with --format text.
    "text": (),
    # A TorchScript archive or a torch.save'd module (runtime/torch.py tells them apart).
    "torch": (".pt", ".pth"),
    # A user's model class in a .py file, stored with its artifacts folder as one bundle
    # (runtime/bundle.py, runtime/python.py).
    "python": (".py",),
    # A remote model's spec (core/remote_spec.py): a YAML file naming its upstream; never
    # guessed from the suffix (register it with --format remote). It has no local
    # runtime: the server calls its upstream (serving/remote_v2.py).
    "remote": (),
}
REMOTE = "remote"
#: Suffixes no format is guessed from but that say what the file likely is.
HINTS: dict[str, str] = dict.fromkeys(
    (".yaml", ".yml"), "a .yaml/.yml file looks like a remote model's spec: pass --format remote"
)

#: Formats whose loading may run arbitrary code and so needs the user's explicit trust:
#: every scikit-learn file and Python model; a torch file unless it is TorchScript (see
#: needs_trust).
UNSAFE_FORMATS = frozenset({"sklearn", "torch", "python"})


def detect_format(path: Path) -> str:
    """The format a file's name says it is in."""
    suffix = path.suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    raise UnsupportedFormat(f"'{suffix or path.name}'", sorted(FORMATS), HINTS.get(suffix, ""))


def needs_trust(format: str, path: Path) -> bool:
    """Whether loading ``path`` unpickles arbitrary objects, so needs ``--trust``."""
    if format == "torch":
        from servewell.runtime.torch import is_torchscript

        return not is_torchscript(path)
    return format in UNSAFE_FORMATS


def check_format(name: str) -> str:
    if name not in FORMATS:
        raise UnsupportedFormat(f"'{name}'", sorted(FORMATS))
    return name


def create_runtime(
    format: str,
    path: Path,
    settings: RuntimeSettings | None = None,
    signature: Signature | None = None,
) -> Runtime:
    """A runtime for ``path`` (not loaded yet)."""
    settings = settings or RuntimeSettings()
    if check_format(format) == REMOTE:
        raise InvalidArtifact(
            "a remote model runs on its upstream: `servewell serve` calls it; it has no "
            "local runtime to load here"
        )
    if format == "text":
        from servewell.runtime.text import TextRuntime

        return TextRuntime(path, settings, signature)
    if format == "torch":
        from servewell.runtime.torch import TorchRuntime

        return TorchRuntime(path, signature)
    if format == "python":
        from servewell.runtime.python import PythonRuntime

        return PythonRuntime(path, signature)
    if format == "onnx":
        from servewell.runtime.onnx import OnnxRuntime

        return OnnxRuntime(path, settings, signature)
    from servewell.runtime.sklearn import SklearnRuntime

    return SklearnRuntime(path, signature)
