-- Checks, from the application's own login, that row-level security holds.
--
-- Run as diversion_app, in a fresh session, after `diversion db upgrade`:
--
--   psql "postgresql://diversion_app@HOST:5432/diversion" -f infra/postgres/verify.sql
--
-- (psql does not understand SQLAlchemy's "postgresql+psycopg://" scheme; drop
-- the "+psycopg" from DATABASE_URL to reuse it.)
--
-- It changes nothing. It prints one NOTICE per check that passed and one
-- WARNING per check that failed, and ends with an error (psql exit status 3)
-- if anything failed, so it can gate a deployment.

\set ON_ERROR_STOP on

DO $verify$
DECLARE
    failures integer := 0;
    tenant_tables integer := 0;
    me record;
    memberships text;
    t record;
    visible bigint;
    problems text;
BEGIN
    -- The login itself: RLS never applies to superusers or BYPASSRLS roles.
    SELECT rolsuper, rolbypassrls INTO me FROM pg_roles WHERE rolname = current_user;
    IF me.rolsuper OR me.rolbypassrls THEN
        RAISE WARNING 'FAIL % is a superuser or has BYPASSRLS', current_user;
        failures := failures + 1;
    ELSE
        RAISE NOTICE 'ok   % is not a superuser and has no BYPASSRLS', current_user;
    END IF;

    SELECT string_agg(g.rolname, ', ') INTO memberships
    FROM pg_auth_members m
    JOIN pg_roles g ON g.oid = m.roleid
    WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user);
    IF memberships IS NOT NULL THEN
        RAISE WARNING 'FAIL % is a member of: %', current_user, memberships;
        failures := failures + 1;
    ELSE
        RAISE NOTICE 'ok   % is a member of no role', current_user;
    END IF;

    -- Whatever the app could create, it would own, and owners skip RLS.
    IF has_schema_privilege('public', 'CREATE') THEN
        RAISE WARNING 'FAIL % may create objects in schema public', current_user;
        failures := failures + 1;
    ELSE
        RAISE NOTICE 'ok   % cannot create objects in schema public', current_user;
    END IF;

    -- The row counts below only mean something with no tenant or user set.
    IF coalesce(current_setting('app.tenant_id', true), '') <> ''
       OR coalesce(current_setting('app.user_id', true), '') <> '' THEN
        RAISE EXCEPTION 'app.tenant_id or app.user_id is set in this session: '
                        'run this file in a fresh session';
    END IF;

    -- Every table with a tenant_id column: RLS enabled and forced, at least
    -- one policy, not owned by the app, no TRUNCATE (it ignores RLS), and no
    -- row visible while no tenant is set.
    FOR t IN
        SELECT c.oid, n.nspname, c.relname,
               c.relrowsecurity, c.relforcerowsecurity,
               pg_get_userbyid(c.relowner) AS owner,
               EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public'
          AND c.relkind IN ('r', 'p')
          AND EXISTS (SELECT FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                        AND NOT a.attisdropped)
        ORDER BY c.relname
    LOOP
        tenant_tables := tenant_tables + 1;
        problems := concat_ws(', ',
            CASE WHEN NOT t.relrowsecurity THEN 'RLS not enabled' END,
            CASE WHEN NOT t.relforcerowsecurity THEN 'RLS not forced' END,
            CASE WHEN NOT t.has_policy THEN 'no policy' END,
            CASE WHEN t.owner = current_user THEN 'owned by ' || current_user END,
            CASE WHEN has_table_privilege(t.oid, 'TRUNCATE') THEN 'TRUNCATE granted' END);
        IF has_table_privilege(t.oid, 'SELECT') THEN
            EXECUTE format('SELECT count(*) FROM %I.%I', t.nspname, t.relname) INTO visible;
            IF visible > 0 THEN
                problems := concat_ws(', ', problems,
                                      visible || ' rows visible with no tenant set');
            END IF;
        END IF;
        IF problems <> '' THEN
            RAISE WARNING 'FAIL table %: %', t.relname, problems;
            failures := failures + 1;
        ELSE
            RAISE NOTICE 'ok   table %: RLS enabled and forced, nothing visible without a tenant',
                         t.relname;
        END IF;
    END LOOP;
    IF tenant_tables = 0 THEN
        RAISE WARNING 'FAIL no table with a tenant_id column: run `diversion db upgrade` first';
        failures := failures + 1;
    END IF;

    -- A provider's own rows (API token hashes, webhook endpoint and secret):
    -- RLS enabled and forced, and no row visible while no provider is set.
    IF coalesce(current_setting('app.provider_id', true), '') <> '' THEN
        RAISE EXCEPTION 'app.provider_id is set in this session: run this file in a fresh session';
    END IF;
    FOR t IN
        SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity,
               EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid
                       AND p.polname = 'provider_owned') AS has_policy
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relname IN ('provider_tokens', 'provider_webhooks')
        ORDER BY c.relname
    LOOP
        problems := concat_ws(', ',
            CASE WHEN NOT t.relrowsecurity THEN 'RLS not enabled' END,
            CASE WHEN NOT t.relforcerowsecurity THEN 'RLS not forced' END,
            CASE WHEN NOT t.has_policy THEN 'no provider_owned policy' END);
        EXECUTE format('SELECT count(*) FROM public.%I', t.relname) INTO visible;
        IF visible > 0 THEN
            problems := concat_ws(', ', problems, visible || ' rows visible with no provider set');
        END IF;
        IF problems <> '' THEN
            RAISE WARNING 'FAIL table %: %', t.relname, problems;
            failures := failures + 1;
        ELSE
            RAISE NOTICE 'ok   table %: RLS enabled and forced, nothing visible without a provider',
                         t.relname;
        END IF;
    END LOOP;

    -- A view reads its tables with its owner's rights unless it is a
    -- security_invoker view; one made by a superuser would show every force.
    FOR t IN
        SELECT c.relname
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind = 'v'
          AND NOT coalesce((SELECT o.option_value::boolean
                            FROM pg_options_to_table(c.reloptions) o
                            WHERE o.option_name = 'security_invoker'), false)
        ORDER BY c.relname
    LOOP
        RAISE WARNING 'FAIL view % is not WITH (security_invoker = true)', t.relname;
        failures := failures + 1;
    END LOOP;

    -- The audit log is append-only for the app.
    IF to_regclass('public.audit_events') IS NULL THEN
        RAISE WARNING 'FAIL table audit_events does not exist';
        failures := failures + 1;
    ELSIF has_any_column_privilege('public.audit_events', 'UPDATE')
          OR has_table_privilege('public.audit_events', 'DELETE')
          OR has_table_privilege('public.audit_events', 'TRUNCATE') THEN
        RAISE WARNING 'FAIL % may UPDATE, DELETE or TRUNCATE audit_events', current_user;
        failures := failures + 1;
    ELSIF NOT has_table_privilege('public.audit_events', 'INSERT') THEN
        RAISE WARNING 'FAIL % may not INSERT into audit_events', current_user;
        failures := failures + 1;
    ELSE
        RAISE NOTICE 'ok   audit_events: INSERT allowed; UPDATE, DELETE, TRUNCATE refused';
    END IF;

    IF failures > 0 THEN
        RAISE EXCEPTION '% check(s) failed', failures;
    END IF;
    RAISE NOTICE 'all checks passed';
END
$verify$;
