#!/bin/sh
# The official postgres image's first start, in short: a new data directory gets POSTGRES_USER with
# POSTGRES_PASSWORD (password logins over the network) and the database POSTGRES_DB.
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
user="${POSTGRES_USER:-postgres}"
database="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 > /dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start > /dev/null
    if [ "$database" != postgres ]; then
        createdb --username="$user" "$database"
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
    echo "postgres: initialised $PGDATA (user $user, database $database)"
fi
if [ "$1" = postgres ]; then
    exec "$@" -c listen_addresses='*'
fi
exec "$@"
