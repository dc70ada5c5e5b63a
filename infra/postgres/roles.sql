-- Database roles for the diversion platform.
--
-- Run as a superuser, connected to the application's database, before the
-- first `diversion db upgrade`:
--
--   psql -d diversion -f infra/postgres/roles.sql \
--        -v owner_password="$DIVERSION_OWNER_PASSWORD" \
--        -v app_password="$DIVERSION_APP_PASSWORD"
--
-- (The compose stack does this through infra/postgres/initdb.sh.)
--
-- Safe to run again: roles are created only when missing, and their
-- attributes are put back to what this file says every time.
--
-- Passwords are psql variables so that none is ever written in the repo.
-- psql does not substitute variables inside the dollar-quoted body of a DO
-- block, so the DO blocks below create the roles without a password and
-- plain ALTER ROLE statements set it afterwards. Leave both variables out
-- where the server authenticates by other means (peer or trust on a test
-- machine): the roles are then created without a password, and an existing
-- password is left as it was. The server keeps only a SCRAM hash, but the
-- statement carries the clear text, so do not run this with log_statement
-- = 'all' or 'ddl'.
--
-- Why two roles. PostgreSQL row-level security does not apply to:
--   * superusers and roles with BYPASSRLS: never, whatever the table says;
--   * a table's owner: unless the table has FORCE ROW LEVEL SECURITY.
-- So the role the application connects as must be neither of those and must
-- own nothing. diversion_owner owns the schema and every table and runs the
-- migrations (which ENABLE and FORCE RLS on each tenant table, so the owner
-- is held to the policies too). diversion_app only reads and writes rows,
-- through the grants below.

\set ON_ERROR_STOP on

\if :{?owner_password}
\else
  \echo 'roles.sql: no -v owner_password given; diversion_owner keeps its current password (none if new)'
\endif
\if :{?app_password}
\else
  \echo 'roles.sql: no -v app_password given; diversion_app keeps its current password (none if new)'
\endif

-- 1. The roles. ------------------------------------------------------------

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'diversion_owner') THEN
        CREATE ROLE diversion_owner LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'diversion_app') THEN
        CREATE ROLE diversion_app LOGIN;
    END IF;
END
$roles$;

-- Restated on every run, so that a role created earlier by hand with more
-- power than it needs is brought back into line. Neither role may be a
-- superuser or have BYPASSRLS: either would switch RLS off for it.
ALTER ROLE diversion_owner WITH LOGIN NOSUPERUSER NOBYPASSRLS
    NOCREATEDB NOCREATEROLE NOREPLICATION;
ALTER ROLE diversion_app WITH LOGIN NOSUPERUSER NOBYPASSRLS
    NOCREATEDB NOCREATEROLE NOREPLICATION;

\if :{?owner_password}
ALTER ROLE diversion_owner WITH PASSWORD :'owner_password';
\endif
\if :{?app_password}
ALTER ROLE diversion_app WITH PASSWORD :'app_password';
\endif

-- The app must hold only the grants made here. Membership in any role
-- (diversion_owner above all: SET ROLE would make it the owner) is refused
-- rather than silently revoked, so that whoever granted it finds out.
DO $membership$
DECLARE
    granted text;
BEGIN
    SELECT string_agg(g.rolname, ', ') INTO granted
    FROM pg_auth_members m
    JOIN pg_roles g ON g.oid = m.roleid
    JOIN pg_roles u ON u.oid = m.member
    WHERE u.rolname = 'diversion_app';
    IF granted IS NOT NULL THEN
        RAISE EXCEPTION 'diversion_app is a member of: %', granted
            USING HINT = 'Revoke these memberships: the application role must '
                         'hold only the direct grants made in roles.sql.';
    END IF;
END
$membership$;

-- 2. The database and the schema. -----------------------------------------

-- Only our two roles (and superusers) may connect. current_database() is used
-- so that this file works under any database name.
DO $database$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO diversion_owner, diversion_app',
                   current_database());
    -- The app's own temporary tables: the bulk path of imports COPYs each batch
    -- into one and moves it across with INSERT ... SELECT, under row-level security.
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO diversion_app', current_database());
END
$database$;

-- The owner owns the schema, so it can create the tables. The app may look
-- things up in it but not create anything: an object the app created would
-- be owned by the app, and an owner skips RLS on a table without FORCE.
ALTER SCHEMA public OWNER TO diversion_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO diversion_app;

-- 3. Privileges on the tables the migrations will create. ------------------

-- Default privileges apply to objects diversion_owner creates from now on,
-- so every table and sequence a migration adds is usable by the app at once,
-- and no migration has to remember a GRANT. TRUNCATE, REFERENCES and TRIGGER
-- are not given: TRUNCATE ignores RLS altogether.
ALTER DEFAULT PRIVILEGES FOR ROLE diversion_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO diversion_app;
ALTER DEFAULT PRIVILEGES FOR ROLE diversion_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO diversion_app;

-- Deliberately no "GRANT ... ON ALL TABLES IN SCHEMA public" here. On a
-- database that has already been migrated it would give UPDATE and DELETE on
-- audit_events back to the app, undoing the REVOKE that the migration makes
-- to keep the audit log append-only. Tables exist only after this file has
-- run, so the default privileges above already cover them.

-- 4. The insights login. ----------------------------------------------------

-- National leads' pages read aggregates only, through a login of their own
-- (INSIGHTS_DATABASE_URL) that may read the released figures and the forces'
-- names and nothing else (not even the unprotected counts): no default
-- privileges, one explicit grant. The migration that makes
-- those tables grants the same where this role already exists.
DO $insights$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'diversion_insights') THEN
        CREATE ROLE diversion_insights LOGIN;
    END IF;
END
$insights$;
ALTER ROLE diversion_insights WITH LOGIN NOSUPERUSER NOBYPASSRLS
    NOCREATEDB NOCREATEROLE NOREPLICATION;
\if :{?insights_password}
ALTER ROLE diversion_insights WITH PASSWORD :'insights_password';
\endif
DO $insights_grants$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO diversion_insights', current_database());
    IF to_regclass('public.insight_figures') IS NOT NULL THEN
        GRANT SELECT ON insight_forces, insight_tables, insight_figures TO diversion_insights;
    END IF;
END
$insights_grants$;
GRANT USAGE ON SCHEMA public TO diversion_insights;
