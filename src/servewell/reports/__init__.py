"""Training reports: the model card, ``report.json`` and a self-contained HTML page, all
rendered from one :class:`~servewell.reports.record.TrainingReport`."""
