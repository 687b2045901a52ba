"""Workloads: applications of services, deployed, healed and scaled on the Docker hosts."""
