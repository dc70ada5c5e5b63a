"""A force has a status, an area and its outcome codes as columns.

- ``tenants.status``: draft, active or suspended; every existing force is
  active.
- ``tenants.area``: the police force area the force covers, by address;
  until now the force's address stood for it, and so it is filled.
- ``tenants.completed_code`` / ``completed_label`` and
  ``not_completed_code`` / ``not_completed_label`` / ``not_completed_action``:
  filled from ``settings["outcomes"]``, which leaves the settings (they keep
  only what has no table yet: billing). A force whose settings lack one is
  given an empty code and label (and no further action), which is what a
  referral of it recorded before.

The downgrade writes the outcome codes back into the settings.

Revision ID: 2d400481e73b
Revises: 7d3c2a9e5b14
Create Date: 2026-12-01 23:40:00

"""
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "2d400481e73b"
down_revision = "7d3c2a9e5b14"
branch_labels = None
depends_on = None

STATUSES = ("draft", "active", "suspended")
ACTIONS = ("no_further_action", "prosecution", "charge_by_postal_requisition", "court")
STATUS = sa.Enum(*STATUSES, name="forcestatus", native_enum=False, length=40)
ACTION = sa.Enum(*ACTIONS, name="noncompletionaction", native_enum=False, length=40)

COLUMNS = (
    ("status", STATUS),
    ("area", sa.String(length=63)),
    ("completed_code", sa.String(length=40)),
    ("completed_label", sa.String(length=200)),
    ("not_completed_code", sa.String(length=40)),
    ("not_completed_label", sa.String(length=200)),
    ("not_completed_action", ACTION),
)
STAND_IN = {"status": "active", "not_completed_action": "no_further_action"} | {
    name: "" for name, _kind in COLUMNS if name not in ("status", "not_completed_action")}

tenants = sa.table(
    "tenants", sa.column("id", sa.Integer), sa.column("slug", sa.String), sa.column("settings", sa.JSON),
    *(sa.column(name, kind) for name, kind in COLUMNS),
)


def _outcome(outcomes: dict[str, Any], key: str) -> dict[str, Any]:
    found = outcomes.get(key)
    return found if isinstance(found, dict) else {}


def upgrade():
    # Added NOT NULL with a stand-in default, then filled. SQLite cannot make
    # a column NOT NULL after the fact without rebuilding the table, which
    # the foreign keys of every force-owned row forbid; there the stand-in
    # defaults stay (the app always writes these columns).
    for name, kind in COLUMNS:
        op.add_column("tenants", sa.Column(name, kind, nullable=False, server_default=STAND_IN[name]))

    bind = op.get_bind()
    for row in bind.execute(sa.select(tenants.c.id, tenants.c.slug, tenants.c.settings)).all():
        settings = dict(row.settings or {})
        outcomes = settings.pop("outcomes", None) or {}
        completed, not_completed = _outcome(outcomes, "completed"), _outcome(outcomes, "not_completed")
        action = not_completed.get("action")
        bind.execute(tenants.update().where(tenants.c.id == row.id).values(
            status="active", area=row.slug, settings=settings,
            completed_code=str(completed.get("code", ""))[:40],
            completed_label=str(completed.get("label", ""))[:200],
            not_completed_code=str(not_completed.get("code", ""))[:40],
            not_completed_label=str(not_completed.get("label", ""))[:200],
            not_completed_action=action if action in ACTIONS else "no_further_action",
        ))

    if bind.dialect.name != "sqlite":
        for name, kind in COLUMNS:
            op.alter_column("tenants", name, existing_type=kind, existing_nullable=False, server_default=None)


def downgrade():
    bind = op.get_bind()
    for row in bind.execute(sa.select(tenants)).all():
        settings = dict(row.settings or {})
        settings["outcomes"] = {
            "completed": {"code": row.completed_code, "label": row.completed_label},
            "not_completed": {"code": row.not_completed_code, "label": row.not_completed_label,
                              "action": row.not_completed_action},
        }
        bind.execute(tenants.update().where(tenants.c.id == row.id).values(settings=settings))

    for name, _kind in reversed(COLUMNS):
        op.drop_column("tenants", name)  # SQLite drops a column in place, no rebuild
