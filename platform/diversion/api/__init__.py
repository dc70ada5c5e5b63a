"""The force API: JSON endpoints for a force's own systems, and the page that issues its tokens."""
