"""Projects: registry namespaces, their members and roles, robot accounts, and the
repository/tag catalogue kept current by registry notifications."""
