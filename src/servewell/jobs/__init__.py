"""Batch prediction jobs: tables scored chunk by chunk through the model steps, and the
runner and executors that do it crash-safely (``docs/architecture.md``)."""
