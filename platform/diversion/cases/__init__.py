"""Case work: people (pseudonymous), encounters, decisions, referrals and outcomes."""
