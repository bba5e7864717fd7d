import servewell


def test_public_api_is_pinned() -> None:
    exported = set(servewell.__all__)
    assert exported == {
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
    }
    for name in exported:
        assert hasattr(servewell, name), name
