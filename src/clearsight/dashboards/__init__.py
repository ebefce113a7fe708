"""Saved dashboards: panels of PromQL or LogQL queries with template variables, per organisation."""
