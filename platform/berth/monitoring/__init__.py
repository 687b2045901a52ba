"""Monitoring: Berth as a Prometheus exporter and discovery source, the PromQL its pages
read, and the Prometheus/Alertmanager configuration and rules it renders."""
