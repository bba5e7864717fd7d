"""Training a model from a table: load, clean, features, split, fit, validate, checks, gate,
and registering what passed."""
