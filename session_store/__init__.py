"""The stateful sidecar: charging sessions from Prometheus, kept in SQLite, served over HTTP."""
