"""Circuit breaking, rate limiting, validation and the closed set of error types."""
