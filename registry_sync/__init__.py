"""Image replication from the primary registry to the mirrors in each IDC."""
