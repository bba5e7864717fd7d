"""``servewell doctor``: the production checklist, each item checked against the live
configuration, the registry and (with ``--url``) the running server.

One module per family of checks (``versioning``, ``limits``, ``caching``, ``logs``,
``metrics``, ``health``, ``resilience``, ``security``, ``loadtesting``, ``monitoring``,
``documentation``); each gives :class:`~servewell.doctor.finding.Finding` rows from a
:class:`~servewell.doctor.context.Context`, and :mod:`~servewell.doctor.runner` runs
them in the checklist's order.
"""
