"""servewell: take a trained model to production and keep it healthy there.

The public API is what ``__all__`` lists; everything else may change without notice.
Each name is imported on first use (``servewell.exports``), so that importing one
module of servewell does not import all of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.exports import lazy_exports

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Client",
    "FeatureRange",
    "ModelRef",
    "ModelVersion",
    "RegisterOptions",
    "ServewellError",
    "Services",
    "Settings",
    "Signature",
    "TensorSpec",
    "__version__",
    "build_services",
    "load_settings",
    "register_estimator",
    "register_file",
]

_EXPORTS = {
    "AsyncClient": "servewell.client",
    "Client": "servewell.client",
    "FeatureRange": "servewell.core.signature",
    "ModelRef": "servewell.core.ref",
    "ModelVersion": "servewell.registry",
    "RegisterOptions": "servewell.registration.register",
    "ServewellError": "servewell.errors",
    "Services": "servewell.bootstrap",
    "Settings": "servewell.settings",
    "Signature": "servewell.core.signature",
    "TensorSpec": "servewell.core.signature",
    "build_services": "servewell.bootstrap",
    "load_settings": "servewell.settings",
    "register_estimator": "servewell.registration.register",
    "register_file": "servewell.registration.register",
}

if TYPE_CHECKING:
    from servewell.bootstrap import Services, build_services
    from servewell.client import AsyncClient, Client
    from servewell.core.ref import ModelRef
    from servewell.core.signature import FeatureRange, Signature, TensorSpec
    from servewell.errors import ServewellError
    from servewell.registration.register import RegisterOptions, register_estimator, register_file
    from servewell.registry import ModelVersion
    from servewell.settings import Settings, load_settings
else:  # hidden from the type checker, for which a misspelt name must stay an error
    __getattr__ = lazy_exports(__name__, _EXPORTS)
