"""Users, their memberships and roles, and signing in and out."""
