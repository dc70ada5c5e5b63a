"""Every model, imported once so that the metadata is complete (migrations, tests)."""

from diversion.accounts.models import ForceMembership, PlatformGrant, ProviderMembership, User
from diversion.audit.models import AuditEvent
from diversion.catalogue.models import Provider
from diversion.tenancy.models import Tenant

__all__ = [
    "AuditEvent",
    "ForceMembership",
    "PlatformGrant",
    "Provider",
    "ProviderMembership",
    "Tenant",
    "User",
]
