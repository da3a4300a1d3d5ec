"""A small CRM as a real MCP server (stdio), over a local SQLite file it creates and seeds.

Used by examples/support_agent.py; run it alone with any MCP client:

    python examples/crm_mcp_server.py --db .tether/crm.db

Tools: find_customer(email), update_address(customer_id, address), add_note(customer_id, note).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from datetime import UTC, datetime
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

DEMO = [
    ("CU-1001", "Ada Lovelace", "ada@example.com", "12 Analytical Row, London", "gold"),
    ("CU-1002", "Grace Hopper", "grace@example.com", "7 Compiler Lane, Arlington", "basic"),
    ("CU-1003", "Alan Turing", "alan@example.com", "1 Enigma Close, Wilmslow", "basic"),
]

server = MCPServer("crm", instructions="The customer records of the support team.")
DB = ".tether/crm.db"

CustomerId = Annotated[str, Field(pattern=r"^CU-[0-9]{4}$", description="e.g. CU-1001")]
EmailAddress = Annotated[str, Field(max_length=80, description="e.g. ada@example.com")]


class Customer(BaseModel):
    customer_id: str
    name: str
    email: str
    address: str
    plan: str


def connect() -> sqlite3.Connection:
    """The CRM database, created with demo customers on first use."""
    new = not os.path.exists(DB)
    os.makedirs(os.path.dirname(DB) or ".", exist_ok=True)
    db = sqlite3.connect(DB)
    if new:
        db.execute("CREATE TABLE customers (customer_id TEXT PRIMARY KEY, name TEXT, email TEXT UNIQUE, "
                   "address TEXT, plan TEXT)")
        db.execute("CREATE TABLE notes (customer_id TEXT, note TEXT, at TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", DEMO)
        db.commit()
    return db


@server.tool()
def find_customer(email: EmailAddress) -> Customer:
    """Find a customer by the email address they write from."""
    with connect() as db:
        row = db.execute("SELECT * FROM customers WHERE lower(email) = lower(?)", (email.strip(),)).fetchone()
    if row is None:
        raise ToolError(f"no customer with email {email!r}")
    return Customer(customer_id=row[0], name=row[1], email=row[2], address=row[3], plan=row[4])


@server.tool()
def update_address(customer_id: CustomerId, address: Annotated[str, Field(max_length=120)]) -> str:
    """Change a customer's postal address."""
    with connect() as db:
        changed = db.execute("UPDATE customers SET address = ? WHERE customer_id = ?",
                             (address.strip(), customer_id)).rowcount
    if not changed:
        raise ToolError(f"no customer {customer_id!r}")
    return f"address of {customer_id} is now {address.strip()!r}"


@server.tool()
def add_note(customer_id: CustomerId, note: Annotated[str, Field(max_length=500)]) -> str:
    """Add a note to a customer's record."""
    with connect() as db:
        db.execute("INSERT INTO notes VALUES (?, ?, ?)",
                   (customer_id, note, datetime.now(UTC).isoformat(timespec="seconds")))
    return "note added"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DB)
    DB = parser.parse_args().db
    server.run()
