"""Notify: route each alert transition to the contacts it concerns, render it, deliver it, record
the outcome."""
