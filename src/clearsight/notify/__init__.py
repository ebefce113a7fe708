"""Notifications with Alertmanager's semantics: routing, grouping, inhibition, silences, receivers."""
