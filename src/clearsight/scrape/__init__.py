"""Scraping Prometheus/OpenMetrics exporters: config, relabeling, targets, the scrape manager."""
