"""Plumbing shared by the three services: settings, topic names, Kafka admin, Faust app setup."""
