"""Background work: the job runtime, the event outbox, leases, and the declared jobs (catalog)."""
