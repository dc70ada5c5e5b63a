#!/bin/sh
# Run by the postgres image's entrypoint from /docker-entrypoint-initdb.d,
# once, when the data volume is empty. It applies roles.sql to the
# application's database with the passwords from the container environment.
#
# The entrypoint sources this file instead of executing it if the execute bit
# is lost, so it avoids `set -u` and `exit`; `${VAR:?}` still stops the
# initialisation when a password is missing.
psql --no-psqlrc --set ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" \
    --dbname "${POSTGRES_DB:?POSTGRES_DB must be set}" \
    --set owner_password="${DIVERSION_OWNER_PASSWORD:?DIVERSION_OWNER_PASSWORD must be set}" \
    --set app_password="${DIVERSION_APP_PASSWORD:?DIVERSION_APP_PASSWORD must be set}" \
    --set insights_password="${DIVERSION_INSIGHTS_PASSWORD:?DIVERSION_INSIGHTS_PASSWORD must be set}" \
    --file /diversion/roles.sql
