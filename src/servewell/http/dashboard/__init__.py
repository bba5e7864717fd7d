"""The web dashboard ``servewell serve`` serves at ``/ui``: server-rendered pages
(Jinja2 templates and vendored static files in this package, nothing from a CDN),
signed in with an API key once (``session``, ``access``). ``app`` builds it and lists
its pages."""
