"""Triggers: windowed aggregates per metric and scope, rule evaluation, one alert state machine per
(rule, scope)."""
