"""servewell: take a trained model to production and keep it healthy there.

The public API is what ``__all__`` lists; everything else may change without notice.
"""

from servewell.bootstrap import Services, build_services
from servewell.client import AsyncClient, Client
from servewell.core import FeatureRange, ModelRef, Signature, TensorSpec
from servewell.errors import ServewellError
from servewell.registration.register import RegisterOptions, register_estimator, register_file
from servewell.registry import ModelVersion
from servewell.settings import Settings, load_settings

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
