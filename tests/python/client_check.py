"""Drives the official PyPI `convex` client (WebSocket-based, on the Rust `convex`
crate) against a Convect server with the `live` + `clients` fixtures, and prints
what it observed as one JSON object on stdout for tests/python_client.test.mjs
to assert on. The script itself asserts nothing: every outcome, including
exceptions, is reported, so a failing check shows what the client saw. Each
step is announced on stderr first, so a call that never returns (the client
waits for the server forever) shows where it stopped.

Usage: client_check.py <deployment url> <admin key> <unique prefix>
"""

import json
import sys
from typing import Any, Callable, Dict, List

import convex
from convex import ConvexClient, ConvexError, ConvexInt64
from convex.http_client import ConvexHttpClient


def plain(value: Any) -> Any:
    """Convex values as JSON; an Int64 as {"$int64": "<decimal>"}."""
    if isinstance(value, ConvexInt64):
        return {"$int64": str(value.value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def step(name: str) -> None:
    print(f"client_check: {name}", file=sys.stderr, flush=True)


def outcome(name: str, call: Callable[[], Any]) -> Dict[str, Any]:
    """The value a call returned, or the exception it raised."""
    step(name)
    try:
        return {"value": plain(call())}
    except ConvexError as e:
        return {"convexError": {"message": str(e), "data": plain(e.data)}}
    except Exception as e:  # noqa: BLE001 - any failure is a result to report
        return {"error": {"type": type(e).__name__, "message": str(e)}}


def follow(sub: Any, until: List[str], seen: List[Any]) -> None:
    """Reads the subscription until it yields `until`, recording each value.

    The client yields the latest result once per Transition, so one result can
    repeat; consecutive repeats are recorded once.
    """
    for value in sub:
        if not seen or seen[-1] != value:
            seen.append(value)
        if value == until:
            return


def main(url: str, admin_key: str, prefix: str) -> None:
    client = ConvexClient(url)
    channel = f"{prefix}-calls"
    report: Dict[str, Any] = {"clientVersion": convex.__version__}

    def list_calls() -> Any:
        return client.query("messages:list", {"channel": channel})

    report["emptyList"] = outcome("query", list_calls)
    report["sends"] = [
        outcome("mutation", lambda body=body: client.mutation("messages:send", {"channel": channel, "body": body}))
        for body in ("one", "two")
    ]
    report["listAfterSends"] = outcome("query after mutations", list_calls)
    report["refuse"] = outcome("ConvexError mutation", lambda: client.mutation("clients:refuse", {"reason": "quota"}))
    report["queryConvexError"] = outcome(
        "ConvexError query", lambda: client.query("records:check", {"name": f"{prefix}-missing"})
    )
    report["action"] = outcome(
        "action", lambda: client.action("clients:shout", {"channel": channel, "body": "three"})
    )
    report["listAfterAction"] = outcome("query after action", list_calls)
    report["internalAsClient"] = outcome(
        "internal query without the admin key", lambda: client.query("clients:secretList", {"channel": channel})
    )

    # A subscription following writes made by this client and by another one.
    live = f"{prefix}-live"
    other = ConvexClient(url)
    sub = client.subscribe("messages:list", {"channel": live})
    seen: List[Any] = []
    step("subscription's first result")
    follow(sub, [], seen)
    expected: List[str] = []
    for body, writer in (("a", client), ("b", other), ("c", client)):
        step(f"subscription after writing {body!r}")
        writer.mutation("messages:send", {"channel": live, "body": body})
        expected.append(body)
        follow(sub, list(expected), seen)
    sub.unsubscribe()
    report["subscription"] = seen

    admin = ConvexClient(url)
    admin.set_admin_auth(admin_key)
    secret = f"{prefix}-secret"
    report["admin"] = {
        "send": outcome(
            "internal mutation as admin",
            lambda: admin.mutation("clients:secretSend", {"channel": secret, "body": "s1"}),
        ),
        "list": outcome(
            "internal query as admin", lambda: admin.query("clients:secretList", {"channel": secret})
        ),
        "echo": outcome("internal action as admin", lambda: admin.action("clients:secretEcho", {"text": "hi"})),
        "public": outcome("public query as admin", lambda: admin.query("messages:list", {"channel": secret})),
    }

    # The package's legacy HTTP client reads only 200 responses, and only
    # integral numbers written as floats (`1.0`), as Convex sends them.
    legacy = ConvexHttpClient(url)
    report["legacy"] = {
        "send": outcome(
            "legacy HTTP mutation",
            lambda: legacy.mutation("messages:send", {"channel": f"{prefix}-legacy", "body": "old"}),
        ),
        "refuse": outcome("legacy HTTP ConvexError", lambda: legacy.mutation("clients:refuse", {"reason": "old"})),
        "missing": outcome("legacy HTTP unknown function", lambda: legacy.query("clients:nope", {})),
    }

    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:4])
