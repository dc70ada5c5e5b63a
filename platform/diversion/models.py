"""Every model, imported once so that the metadata is complete (migrations, tests)."""

from diversion.accounts.models import ForceMembership, PlatformGrant, ProviderMembership, User
from diversion.audit.models import AuditEvent
from diversion.catalogue.models import Provider
from diversion.eligibility.models import Decision, PolicyVersion
from diversion.tenancy.models import Tenant

__all__ = [
    "AuditEvent",
    "Decision",
    "ForceMembership",
    "PlatformGrant",
    "PolicyVersion",
    "Provider",
    "ProviderMembership",
    "Tenant",
    "User",
]
