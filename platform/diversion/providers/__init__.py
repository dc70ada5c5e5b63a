"""The provider workspace: provider staff and the referrals of every force their provider serves."""
