#!/bin/bash
# Schemathesis against gunicorn in production settings (DEBUG unset, a fresh SECRET_KEY, HTTPS as
# a TLS proxy would say it), on a throwaway database with the demo's data, as staff: every phase,
# the checks a client relies on. Exits non-zero on any failure. The suite runs Schemathesis too
# (tests/config/test_api_contract.py); this is the same against the production stack.
#   scripts/fuzz_api.sh                     # SQLite
#   scripts/fuzz_api.sh postgres://postgres@127.0.0.1:5432   # PostgreSQL (a server URL, no db)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
WORK=$(mktemp -d)
if [ -n "${1:-}" ]; then
    DB=prefloop_fuzz_$$
    export DATABASE_URL="$1/$DB"
    psql "$1/postgres" -qc "CREATE DATABASE $DB"
    drop() { psql "$1/postgres" -qc "DROP DATABASE $DB WITH (FORCE)"; }
else
    export DATABASE_URL="sqlite:///$WORK/db.sqlite3"
    drop() { :; }
fi
SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')
export SECRET_KEY DATA_DIR="$WORK" ALLOWED_HOSTS=127.0.0.1
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/13}
export SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
unset DEBUG
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" && wait "$SERVER" || true; drop "${1:-}"; rm -rf "$WORK"; }
trap 'cleanup "${1:-}"' EXIT

"$VENV/bin/python" manage.py migrate -v0
"$VENV/bin/python" manage.py collectstatic --noinput -v0
# seed_demo makes accounts with known passwords, so it runs only with DEBUG on: the data is
# seeded that way, and the server below runs without it.
DEBUG=1 "$VENV/bin/python" manage.py seed_demo > "$WORK/seed.txt"
TOKEN=$("$VENV/bin/python" manage.py shell -c "
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
print('TOKEN=' + Token.objects.get_or_create(user=get_user_model().objects.get(username='admin'))[0].key)
" | sed -n 's/^TOKEN=//p')
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV/bin/gunicorn" config.wsgi -b "127.0.0.1:$PORT" -w 2 --log-level warning &
SERVER=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 60); do curl -sf -o /dev/null -H 'X-Forwarded-Proto: https' "$URL/accounts/login/" && break; sleep 1; done
AUTH=(-H "Authorization: Bearer $TOKEN" -H 'X-Forwarded-Proto: https')
curl -sf "${AUTH[@]}" -H 'Accept: application/json' "$URL/api/schema/" > "$WORK/schema.json"
"$VENV/bin/schemathesis" --no-color run "$WORK/schema.json" --url "$URL" "${AUTH[@]}" \
    --phases examples,coverage,fuzzing,stateful \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --workers 1 --request-timeout 60 --seed "${SEED:-30}"
