"""Cluster configs (YAML) plus `cluster.local`, the single-machine Ray cluster helper."""
