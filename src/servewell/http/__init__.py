"""The HTTP adapter: create_app, the V2 and REST protocol adapters, middleware, routes."""

from servewell.http.app import ServewellApp, create_app

__all__ = ["ServewellApp", "create_app"]
