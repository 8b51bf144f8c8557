"""What every room shares: settings from one table, errors, metrics, logging, the format table, bounded caches. Imports no other room."""
