"""Load tests of a running server (``servewell loadtest``): bodies the model must accept
(``bodies.py``) sent by a lean asyncio client (``client.py``) in closed or open loop
(``schedule.py``), latencies in HDR-style histograms (``stats.py``), an SLO verdict
(``slo.py``), the run (``run.py``), its JSON document (``report.py``) and a Locust file
for load from many machines (``locust.py``)."""
