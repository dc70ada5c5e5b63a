"""Which force a piece of work belongs to, and the layers that enforce it."""
