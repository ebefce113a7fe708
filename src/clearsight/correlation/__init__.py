"""Change-to-spike correlation: robust baselines, anomalies, and their causes."""
