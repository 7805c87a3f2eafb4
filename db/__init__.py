"""Persistence: typed models, migrations, shared queries and the hash-chained event log."""
