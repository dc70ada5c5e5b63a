"""The platform admin console."""
