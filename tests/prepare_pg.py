"""Print a URL for an empty-able PostgreSQL test database when a server answers on 127.0.0.1:5432.

Used by `make test`: creates the `convene_test` database if missing; prints nothing when PostgreSQL
is not there, so the suite then runs on SQLite alone. Under pytest-xdist each worker uses a database of its
own named after this one (`convene_test_gw0`, ...), which tests/conftest.py creates when missing.
"""
import os
import sys

import psycopg

ADMIN_URL = os.environ.get("CONVENE_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NAME = "convene_test"


def main() -> int:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{NAME}"')
    except psycopg.Error as exc:
        print(f"PostgreSQL not available ({exc.__class__.__name__}); tests run on SQLite only.", file=sys.stderr)
        return 0
    print(ADMIN_URL.rsplit("/", 1)[0] + "/" + NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
