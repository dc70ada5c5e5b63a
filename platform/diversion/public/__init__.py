"""Pages anyone may see: the start page and the health check."""
