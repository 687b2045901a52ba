"""The host inventory: clusters, pools, hosts, and knowing which hosts are alive."""
