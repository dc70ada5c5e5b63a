"""Providers and the course catalogue shared by every force."""
