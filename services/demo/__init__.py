"""The local demo behind `make run`: bundled scenarios, a webhook receiver, and the
orchestration."""
