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
    shared text;
    shared_rows bigint;
    loose_policies integer := 0;
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

    -- The row counts below only mean something with no force, user or
    -- provider set.
    IF coalesce(current_setting('app.tenant_id', true), '') <> ''
       OR coalesce(current_setting('app.user_id', true), '') <> ''
       OR coalesce(current_setting('app.provider_id', true), '') <> '' THEN
        RAISE EXCEPTION 'app.tenant_id, app.user_id or app.provider_id is set in this session: '
                        'run this file in a fresh session';
    END IF;

    -- Every table with a tenant_id column: RLS enabled and forced, at least
    -- one policy, not owned by the app, no TRUNCATE (it ignores RLS), and no
    -- row visible while no tenant is set, except rows shared on purpose.
    --
    -- Shared on purpose, and only these: published policy versions. They are
    -- the forces' public schemes, read across forces to compare schemes and
    -- to simulate one force's policy on another's cases (`diversion policy
    -- simulate --from-tenant`, which reads them with no force in scope), so
    -- the migration gives policy_versions a SELECT-only policy
    -- `also_readable` (status = 'published') next to the tenant policy. The
    -- rule is right, so the check allows exactly those rows rather than the
    -- rule being narrowed: a published scheme is no secret, and the CLI needs
    -- it with no force set. Drafts stay private to their force: a draft
    -- visible without a tenant still fails, and the check on write policies
    -- below makes sure the sharing is for reading only. force_memberships'
    -- own also_readable policy needs no entry: with no app.user_id it admits
    -- nothing. A new shared rule needs its own entry in `shared` below.
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
        shared := CASE t.relname WHEN 'policy_versions' THEN $$status = 'published'$$ END;
        shared_rows := 0;
        -- NULLIF: concat_ws gives '' rather than NULL when nothing is wrong,
        -- and a later concat_ws would then start the message with ', '.
        problems := NULLIF(concat_ws(', ',
            CASE WHEN NOT t.relrowsecurity THEN 'RLS not enabled' END,
            CASE WHEN NOT t.relforcerowsecurity THEN 'RLS not forced' END,
            CASE WHEN NOT t.has_policy THEN 'no policy' END,
            CASE WHEN t.owner = current_user THEN 'owned by ' || current_user END,
            CASE WHEN has_table_privilege(t.oid, 'TRUNCATE') THEN 'TRUNCATE granted' END), '');
        IF has_table_privilege(t.oid, 'SELECT') THEN
            -- `shared` is a constant of this file, never input.
            EXECUTE format('SELECT count(*) FILTER (WHERE (%s) IS NOT TRUE), '
                           'count(*) FILTER (WHERE (%s) IS TRUE) FROM %I.%I',
                           coalesce(shared, 'false'), coalesce(shared, 'false'),
                           t.nspname, t.relname)
                INTO visible, shared_rows;
            IF visible > 0 THEN
                problems := concat_ws(', ', problems,
                                      visible || ' rows visible with no tenant set');
            END IF;
        END IF;
        IF problems IS NOT NULL THEN
            RAISE WARNING 'FAIL table %: %', t.relname, problems;
            failures := failures + 1;
        ELSIF shared IS NOT NULL THEN
            RAISE NOTICE 'ok   table %: RLS enabled and forced, nothing visible without a tenant '
                         'but % rows shared on purpose (%)', t.relname, shared_rows, shared;
        ELSE
            RAISE NOTICE 'ok   table %: RLS enabled and forced, nothing visible without a tenant',
                         t.relname;
        END IF;
    END LOOP;
    IF tenant_tables = 0 THEN
        RAISE WARNING 'FAIL no table with a tenant_id column: run `diversion db upgrade` first';
        failures := failures + 1;
    END IF;

    -- A permissive policy on a force-owned table that lets rows be written
    -- (FOR ALL, INSERT, UPDATE or DELETE) must compare with the force in
    -- scope in each of its conditions: reads may be shared on purpose (see
    -- above), writes never. Restrictive policies only ever narrow.
    FOR t IN
        SELECT c.relname, p.polname,
               pg_get_expr(p.polqual, p.polrelid) AS using_expr,
               pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
        FROM pg_policy p
        JOIN pg_class c ON c.oid = p.polrelid
        WHERE c.relnamespace = 'public'::regnamespace
          AND p.polpermissive
          AND p.polcmd <> 'r'
          AND EXISTS (SELECT FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                        AND NOT a.attisdropped)
        ORDER BY c.relname, p.polname
    LOOP
        IF (t.using_expr IS NULL AND t.check_expr IS NULL)
           OR t.using_expr NOT LIKE '%app.tenant_id%'
           OR t.check_expr NOT LIKE '%app.tenant_id%' THEN
            RAISE WARNING 'FAIL policy % on %: lets rows be written without comparing with app.tenant_id',
                          t.polname, t.relname;
            loose_policies := loose_policies + 1;
        END IF;
    END LOOP;
    IF loose_policies > 0 THEN
        failures := failures + loose_policies;
    ELSE
        RAISE NOTICE 'ok   every policy that lets rows be written compares with app.tenant_id';
    END IF;

    -- A provider's own rows (API token hashes, webhook endpoint and secret,
    -- the answers kept under its idempotency keys):
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
          AND c.relname IN ('provider_tokens', 'provider_webhooks', 'provider_idempotency_keys')
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
