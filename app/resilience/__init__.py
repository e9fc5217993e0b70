"""Circuit breaking, rate limiting, bulkheads, shared state, validation and client auth."""
