"""ews: the three stream processors (ingest, triggers, notify), their shared
plumbing and the CLI."""
