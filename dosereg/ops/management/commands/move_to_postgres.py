"""manage.py move_to_postgres DATABASE_URL: copy the embedded registry into PostgreSQL and verify the copy."""

from __future__ import annotations

from dosereg.ops.move import MoveError, move, verify
from dosereg.registry.management.base import DoseRegCommand, InputFailed


class Command(DoseRegCommand):
    help = ("Copy this embedded (SQLite) registry into an empty PostgreSQL database and verify every table. "
            "Stop the listener first; then set DATABASE_URL to the new database.")

    def add_arguments(self, parser):
        parser.add_argument("database_url", metavar="DATABASE_URL", help="postgresql://user:password@host:port/name")
        parser.add_argument("--force", action="store_true", help="replace DoseReg data already in the target")

    def handle(self, *args, **o):
        try:
            copies = move(o["database_url"], force=o["force"])
            differing = verify()
        except MoveError as exc:
            raise InputFailed(str(exc)) from exc
        if differing:
            raise InputFailed(f"the copy differs in {len(differing)} table(s): {', '.join(differing)}")
        rows = sum(c.rows for c in copies)
        self.stderr.write(f"copied {rows} rows in {len(copies)} tables; every table verified equal. "
                          f"Now set DATABASE_URL to the new database and start DoseReg.")
