"""Every model, imported once so that the metadata is complete (migrations, tests)."""

from diversion.accounts.invitations import ForceInvitation, ProviderInvitation
from diversion.accounts.models import ForceMembership, PlatformGrant, ProviderMembership, User
from diversion.accounts.sso import ForceSignOn, SignOnIdentity
from diversion.audit.models import AuditEvent
from diversion.billing.models import (
    ClosedMonth,
    ConnectedAccount,
    Contract,
    LedgerEntry,
    Price,
    Statement,
    StatementLine,
    StripeCustomer,
    StripeEvent,
)
from diversion.cases.models import BookedSession, Encounter, Person, Referral
from diversion.catalogue.models import Course, Offering, Provider
from diversion.eligibility.models import Decision, PolicyVersion, SimulationRun
from diversion.insights.models import InsightFigure, InsightForce, InsightStale, InsightTable, insight_counts
from diversion.jobs.models import JobRun
from diversion.jsonapi.idempotency import IdempotencyKey, ProviderIdempotencyKey
from diversion.jsonapi.tokens import ApiToken, ProviderToken
from diversion.providers.models import (
    FeedCounter,
    FeedEntry,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from diversion.tenancy.models import Tenant

__all__ = [
    "ApiToken",
    "AuditEvent",
    "BookedSession",
    "ClosedMonth",
    "ConnectedAccount",
    "Contract",
    "Course",
    "Decision",
    "Encounter",
    "FeedCounter",
    "FeedEntry",
    "ForceInvitation",
    "ForceMembership",
    "ForceSignOn",
    "IdempotencyKey",
    "InsightFigure",
    "InsightForce",
    "InsightStale",
    "InsightTable",
    "JobRun",
    "LedgerEntry",
    "Offering",
    "Person",
    "PlatformGrant",
    "PolicyVersion",
    "Price",
    "Provider",
    "ProviderIdempotencyKey",
    "ProviderInvitation",
    "ProviderMembership",
    "ProviderToken",
    "Referral",
    "SignOnIdentity",
    "SimulationRun",
    "Statement",
    "StatementLine",
    "StripeCustomer",
    "StripeEvent",
    "Tenant",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "insight_counts",
]
