"""The append-only record of sign-ins and of every change a service makes."""
