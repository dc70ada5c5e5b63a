"""Provider integrations: API tokens, the referral feed and outbound webhooks."""
