"""Ingest: validate every feed message, normalise it into an Observation, reject the rest with a
reason."""
