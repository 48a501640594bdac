"""`workbench serve-rating EXP` (blind rating in raters' browsers) and `workbench ratings …`
(the operator's side: identity-leak flags, rating settings, rater links, rater consistency)."""

from __future__ import annotations

import argparse
import socket
import sys

from ..rating.consistency import consistency_for
from ..rating.identity_leaks import find_leaks
from ..rating.sessions import ratable_items
from ..rating.settings import get_settings, update_settings
from ..rating.tokens import active_links, check_rater_name, issue_token, revoke_tokens
from ..terminal_text import safe_text
from ..workspace import OpenedWorkspace
from .output import print_json, print_table

DEFAULT_PORT = 8000


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve-rating", help="serve the blind Rate screen to raters' browsers")
    p.add_argument("experiment")
    p.add_argument("--rater", action="append", default=[], metavar="NAME",
                   help="issue (or re-issue) a personal link for this rater; repeat for several")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: reach it through an SSH tunnel)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other than loopback (plain HTTP: prefer an SSH tunnel)")
    p.add_argument("--exclude-leaks", action="store_true",
                   help="leave out items whose answers may name their model (a setting of the "
                        "experiment: it stays on)")
    p.set_defaults(func=serve_rating)


def add_rating_parsers(rating: argparse._SubParsersAction) -> None:
    """`ratings leaks|settings|links|consistency` (added to the `ratings` group)."""
    p = rating.add_parser("leaks", help="answers that may reveal their model (possible leaks)")
    p.add_argument("experiment")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=rating_leaks)
    p = rating.add_parser("settings", help="show or change what raters see")
    p.add_argument("experiment")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--show-reference", dest="show_reference", action="store_true",
                       default=None, help="show the dataset's reference answer to raters")
    shown.add_argument("--hide-reference", dest="show_reference", action="store_false",
                       help="hide it (the default)")
    leaks = p.add_mutually_exclusive_group()
    leaks.add_argument("--exclude-leaks", dest="exclude_leaks", action="store_true", default=None,
                       help="leave possible identity leaks out of every rating session")
    leaks.add_argument("--include-leaks", dest="exclude_leaks", action="store_false",
                       help="rate them too (the default)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=rating_settings)
    p = rating.add_parser("links", help="raters with a valid browser link; withdraw links")
    p.add_argument("experiment")
    p.add_argument("--revoke", metavar="RATER", action="append", default=[],
                   help="withdraw this rater's link (repeat; 'all' withdraws every link)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=rating_links)
    p = rating.add_parser("consistency", help="agreement of each rater with the others")
    p.add_argument("experiment")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=rating_consistency)


def _fail(message: str) -> int:
    print(f"error: {safe_text(message)}", file=sys.stderr)
    return 2


def _link_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"[{host}]" if ":" in host else host


def serve_rating(ws: OpenedWorkspace, args) -> int:
    from ..rating.serve import bind_socket, is_loopback, serve

    store = ws.store
    exp = store.get_experiment(args.experiment)
    if not {"A", "B"} <= set(exp.arms) or not ratable_items(store, exp.id):
        return _fail(f"experiment #{exp.id} has nothing to rate yet: no item has answers from "
                     "both A and B (blind rating needs a shadow replay)")
    if not 0 <= args.port <= 65535:
        return _fail(f"--port must be between 0 and 65535, not {args.port}")
    if not is_loopback(args.host) and not args.allow_remote:
        return _fail(f"--host {args.host} would expose the rating links to the network; add "
                     "--allow-remote to mean it, or keep 127.0.0.1 and use an SSH tunnel")
    raters = list(dict.fromkeys(check_rater_name(name) for name in args.rater))
    if not raters and not active_links(store, exp.id):
        return _fail(f"no rater has a link to experiment #{exp.id} yet: pass --rater NAME")
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    if args.exclude_leaks:
        update_settings(store, exp.id, exclude_leaks=True)
    tokens = {rater: issue_token(store, exp.id, rater) for rater in raters}
    settings = get_settings(store, exp.id)
    leaky = {leak.item_id for leak in find_leaks(store, exp.id)}
    others = [row["rater"] for row in active_links(store, exp.id) if row["rater"] not in tokens]
    port = sock.getsockname()[1]
    base = f"http://{_link_host(args.host)}:{port}"
    ws.close()  # the server opens the database per request, each rater's app its own

    def started() -> None:
        if not is_loopback(args.host):
            print(f"warning: listening on {args.host}: anyone who can reach port {port} can try "
                  "links, and plain HTTP shows links and answers to the network path; prefer "
                  "127.0.0.1 and an SSH tunnel (README: Blind rating in a browser)",
                  file=sys.stderr, flush=True)
        if leaky:
            what = ("left out of the sessions" if settings.exclude_leaks else
                    "still shown to raters (--exclude-leaks leaves them out)")
            print(f"warning: {len(leaky)} item(s) have an answer that may name its model "
                  f"(possible identity leak), {what}; `workbench ratings leaks {exp.id}` lists "
                  "them", file=sys.stderr, flush=True)
        print(f"Serving blind rating of experiment #{exp.id} on {base} (Ctrl+C stops).",
              flush=True)
        for rater, token in tokens.items():
            print(f"  {safe_text(rater)}  {base}/rate/{token}", flush=True)
        if tokens:
            print("Each link is personal: it opens only that rater's session of this "
                  "experiment. Send it privately; issuing a new one withdraws the old.", flush=True)
        if others:
            print(f"Earlier links stay valid for: {', '.join(safe_text(r) for r in others)} "
                  f"(`workbench ratings links {exp.id} --revoke NAME` withdraws one).", flush=True)
        print(f"Reference answers are {'shown' if settings.show_reference else 'hidden'}; "
              f"`workbench ratings settings {exp.id}` changes that.", flush=True)

    serve(ws.store.path, ws.workspace.root, sock, on_start=started)
    return 0


def rating_leaks(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    leaks = find_leaks(ws.store, exp.id)
    if args.json:
        print_json([vars(leak) for leak in leaks])
        return 0
    print_table(("item", "arm", "term", "excerpt"),
                ((leak.item_key, leak.arm, leak.term, leak.excerpt) for leak in leaks))
    excluded = get_settings(ws.store, exp.id).exclude_leaks
    print(f"{len({leak.item_id for leak in leaks})} item(s) flagged; "
          + ("left out of rating sessions." if excluded else
             f"rated like any other (`workbench ratings settings {exp.id} --exclude-leaks` "
             "leaves them out)."))
    return 0


def rating_settings(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    if args.show_reference is None and args.exclude_leaks is None:
        settings = get_settings(ws.store, exp.id)
    else:
        settings = update_settings(ws.store, exp.id, show_reference=args.show_reference,
                                   exclude_leaks=args.exclude_leaks)
    if args.json:
        print_json(vars(settings))
    else:
        print_table(("setting", "value"), (("show_reference", settings.show_reference),
                                           ("exclude_leaks", settings.exclude_leaks)))
    return 0


def rating_links(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    for rater in args.revoke:
        count = revoke_tokens(ws.store, exp.id, None if rater == "all" else rater)
        print(f"withdrew {count} link(s) of {safe_text(rater)}", file=sys.stderr)
    rows = active_links(ws.store, exp.id)
    if args.json:
        print_json(rows)
    else:
        print_table(("rater", "created", "last used"),
                    ((r["rater"], r["created_at"][:19], (r["last_used_at"] or "")[:19])
                     for r in rows))
    return 0


def rating_consistency(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    rows = consistency_for(ws.store, exp.id)
    if args.json:
        print_json([r.to_dict() for r in rows])
        return 0

    def pct(value):
        return "-" if value is None else f"{value:.0%}"

    print_table(("rater", "votes", "compared", "agreement", "others", "p", "outlier", "prefers 1",
                 "side bias", "median s"),
                ((r.rater, r.votes, r.compared, pct(r.agreement), pct(r.baseline),
                  "-" if r.p_value is None else f"{r.p_value:.3f}", "yes" if r.outlier else "",
                  pct(r.left_share), "yes" if r.side_biased else "",
                  "-" if r.median_seconds is None else f"{r.median_seconds:.1f}") for r in rows))
    return 0
