"""The `lockgate` command: demo, run, tools, db."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from local.evaluation import cli as eval_cmd
from local.models import UsageError, load_model
from local.stack import database_server, home, provision, upstream_services
from local.trace import TracePrinter
from local.users import LOCAL_USERS
from orchestrator import wiring
from orchestrator.catalog import EXPORTS, Catalog
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.limits import DEFAULT_MAX_STEPS, MAX_STEPS_CEILING, Limits
from orchestrator.loop import Orchestrator
from orchestrator.ports import Model
from orchestrator.records import codec
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import Outcome, SessionState
from tools.registry import CONTRACTS

DEMO_SCRIPT = Path(__file__).with_name("demo.yaml")
DEMO_REQUEST = (
    "Book Ada Lovelace (customer C-1001) in business class from Paris to New York in 10 days,"
    " and tell me the weather there on arrival."
)


def run_session(
    request: str,
    model: Model,
    user: str,
    limits: Limits,
    *,
    as_json: bool,
    out: TextIO,
    synthesizer: Model | None = None,
    time_zone: str = "UTC",
) -> SessionState:
    """Run one session on the local stack, printing the trace as it happens."""
    principal = LOCAL_USERS.get(user)
    if principal is None:
        raise UsageError(f"--user {user!r}: unknown; local users are {', '.join(LOCAL_USERS)}")
    printer = TracePrinter(sys.stderr if as_json else out)
    if model.model_id.startswith("scripted:"):
        print(
            f"note: the model is scripted ({model.model_id}): decisions are replayed, no real "
            "model is called; tools, validation and the database are real.",
            file=sys.stderr if as_json else out,
        )
    with database_server() as admin_url, upstream_services() as upstreams:
        invoker = InProcessInvoker(provision(admin_url, upstreams=upstreams))
        try:
            orchestrator = Orchestrator(
                catalog=Catalog(CONTRACTS),
                model=model,
                invoker=invoker,
                store=MemoryStore(),
                events=printer,
                limits=limits,
                synthesizer=synthesizer,
                time_zone=time_zone,
                prices=wiring.price_table(wiring.settings()),
            )
            state = orchestrator.run(orchestrator.start(uuid.uuid4().hex, request, principal))
        finally:
            invoker.close()
        if as_json:
            document = codec(SessionState).dump_python(state, mode="json", exclude={"guard"})
            document["partial_result"] = state.partial_result()
            document["facts"] = state.facts()
            print(json.dumps(document, indent=2), file=out)
        elif state.outcome is Outcome.COMPLETED and model.model_id == "scripted:demo":
            _show_bookings(admin_url, out)
    return state


def _show_bookings(admin_url: str, out: TextIO) -> None:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT b.customer_id, f.flight_no, f.origin, f.destination, f.departs_at::date, b.cabin"
            " FROM bookings b JOIN flights f ON f.id = b.flight_id"
            " WHERE b.customer_id = 'C-1001' ORDER BY b.created_at"
        ).fetchall()
    print(f"database: {len(rows)} booking row(s) for C-1001", file=out)
    for row in rows:
        print(f"  {row[0]} {row[1]} {row[2]}->{row[3]} {row[4]} {row[5]}", file=out)


def _step_limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_STEPS_CEILING:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_STEPS_CEILING}")
    return value


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(
        max_steps=args.max_steps,
        max_tokens=getattr(args, "max_tokens", None),
        max_usd=getattr(args, "max_usd", None),
        max_seconds=getattr(args, "max_seconds", None),
    )


def _db(action: str, out: TextIO) -> None:
    from local.postgres import EmbeddedPostgres

    server = EmbeddedPostgres(home() / "postgres")
    if action == "up":
        server.start()
        print(server.url("lockgate"), file=out)
    elif action == "down":
        server.stop()
        print("stopped", file=out)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="lockgate", description="Deterministic tool routing for AI agents."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the demo session on the local stack")
    demo.add_argument("--json", action="store_true", help="print the session as JSON")
    demo.add_argument("--max-steps", type=_step_limit, default=DEFAULT_MAX_STEPS)

    run = sub.add_parser("run", help="run one agent session on the local stack")
    run.add_argument("request", help="what the user asks for")
    run.add_argument(
        "--model",
        default=f"scripted:{DEMO_SCRIPT}",
        help="scripted:FILE, bedrock:MODEL_ID, openai:MODEL or anthropic:MODEL",
    )
    run.add_argument(
        "--time-zone",
        default=os.environ.get("LOCKGATE_TIME_ZONE", "UTC"),
        help="the user's IANA time zone, told to the model with today's date (default UTC)",
    )
    run.add_argument("--user", default="alice", help=f"local user: {', '.join(LOCAL_USERS)}")
    run.add_argument(
        "--synthesizer", help="optional model that writes the final answer (any model spec)"
    )
    run.add_argument("--max-steps", type=_step_limit, default=DEFAULT_MAX_STEPS)
    run.add_argument("--max-tokens", type=int, help="token budget (input + output)")
    run.add_argument("--max-usd", type=float, help="model spend budget in USD")
    run.add_argument("--max-seconds", type=float, help="wall clock budget")
    run.add_argument("--json", action="store_true", help="print the session as JSON")
    run.add_argument(
        "--api",
        metavar="URL",
        help="go through a running `lockgate serve` (e.g. http://127.0.0.1:8787)",
    )

    tools = sub.add_parser("tools", help="list the tool catalog with JSON schemas")
    tools.add_argument("--format", choices=["json", *EXPORTS], default="json")

    db = sub.add_parser("db", help="the embedded local PostgreSQL")
    db.add_argument("action", choices=["up", "down"])

    eval_cmd.add_parser(sub)

    serve = sub.add_parser("serve", help="the sessions API on 127.0.0.1 (local stack)")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument(
        "--state",
        choices=["postgres", "moto"],
        default="postgres",
        help="where sessions and the work queue live: the local PostgreSQL (durable, the"
        " default) or DynamoDB/SQS on moto's server (a test double; lost on exit)",
    )
    serve.add_argument(
        "--workers", type=int, default=4, help="worker threads advancing sessions (default 4)"
    )
    serve.add_argument(
        "--model", default=f"scripted:{DEMO_SCRIPT}", help="any model spec (see `run --help`)"
    )

    token = sub.add_parser("token", help="print a locally signed token for `lockgate serve`")
    token.add_argument("--user", default="alice", help=f"local user: {', '.join(LOCAL_USERS)}")

    mcp = sub.add_parser("mcp", help="serve the tool catalog over MCP (stdio or streamable HTTP)")
    mcp.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    mcp.add_argument("--user", default="alice", help="stdio: the local user the calls act for")
    mcp.add_argument("--port", type=int, default=8788, help="http: port on 127.0.0.1")
    mcp.add_argument(
        "--invoker",
        choices=["local", "lambda"],
        default="local",
        help="tools in-process on the local stack, or the deployed functions",
    )

    openapi = sub.add_parser("openapi", help="write the sessions API's OpenAPI document")
    openapi.add_argument("--out", default="docs/openapi.json")
    return parser


def _tools(args: argparse.Namespace, out: TextIO) -> int:
    if args.format == "json":
        doc: Any = [
            {
                "name": s.name,
                "description": s.description,
                "scopes": sorted(s.scopes),
                "writes": s.writes,
                "input_schema": s.input_schema(),
            }
            for s in CONTRACTS
        ]
    else:
        doc = EXPORTS[args.format](CONTRACTS)
    print(json.dumps(doc, indent=2), file=out)
    return 0


def _token(args: argparse.Namespace, out: TextIO) -> int:
    from local.auth import issue_token

    if args.user not in LOCAL_USERS:
        raise UsageError(f"--user {args.user!r}: unknown; local users are {', '.join(LOCAL_USERS)}")
    print(issue_token(home(), args.user), file=out)
    return 0


def _openapi(args: argparse.Namespace, out: TextIO) -> int:
    from orchestrator.handlers.api import openapi_document

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(openapi_document() + "\n")
    print(f"wrote {args.out}", file=out)
    return 0


def _mcp(args: argparse.Namespace, out: TextIO) -> int:
    from local import mcp

    principal = LOCAL_USERS.get(args.user)
    if args.transport == "stdio" and principal is None:
        raise UsageError(f"--user {args.user!r}: unknown; local users are {', '.join(LOCAL_USERS)}")
    return mcp.run(
        transport=args.transport,
        principal=principal,
        port=args.port,
        home=home(),
        invoker=args.invoker,
        out=out,
    )


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from local.cloud import StateInUse
    from local.serve import serve

    load_model(args.model)  # fail fast on a bad model spec
    try:
        return serve(args.port, args.model, out, state=args.state, workers=args.workers)
    except StateInUse as exc:
        raise UsageError(str(exc)) from exc


def _session(args: argparse.Namespace, out: TextIO) -> int:
    synthesizer = None
    if args.command == "demo":
        request, model, user = DEMO_REQUEST, load_model(f"scripted:{DEMO_SCRIPT}"), "alice"
    else:
        if args.api:
            from local.client import run_via_api

            return run_via_api(args.api, args.request, args.user, out, as_json=args.json)
        request, model, user = args.request, load_model(args.model), args.user
        synthesizer = load_model(args.synthesizer) if args.synthesizer else None
    time_zone = getattr(args, "time_zone", "UTC")
    try:
        ZoneInfo(time_zone)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise UsageError(f"--time-zone {time_zone!r}: not an IANA time zone") from exc
    state = run_session(
        request,
        model,
        user,
        _limits(args),
        as_json=args.json,
        out=out,
        synthesizer=synthesizer,
        time_zone=time_zone,
    )
    return 0 if state.outcome is Outcome.COMPLETED else 1


def _db_command(args: argparse.Namespace, out: TextIO) -> int:
    _db(args.action, out)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "tools": _tools,
    "db": _db_command,
    "eval": eval_cmd.run,
    "token": _token,
    "openapi": _openapi,
    "serve": _serve,
    "mcp": _mcp,
    "demo": _session,
    "run": _session,
}


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Entry point of the `lockgate` console script."""
    args = build_parser().parse_args(argv)
    # Tool logs are structured JSON for CloudWatch; on a terminal the trace says it all.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    try:
        return COMMANDS[args.command](args, out)
    except UsageError as exc:
        print(f"lockgate: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
