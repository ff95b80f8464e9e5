"""``ganas serve``: the REST API and the dashboard over a workspace, with uvicorn.

A command plug-in: ``pyproject.toml`` declares ``register`` under the entry-point group
``ganas.commands``, and :func:`nas.cli.build_parser` loads it from there (``nas`` cannot import
this module: it imports the dashboard).
"""
from __future__ import annotations

import argparse

from nas.cli.arguments import store_flag, workspace_of

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve the REST API and the dashboard of a workspace",
        description="Serve the REST API (/api, schema at /openapi.json) and the dashboard over a workspace's "
                    "store. Bound to 127.0.0.1 by default; any other address requires an access token.")
    parser.add_argument("--workspace", metavar="DIR", default=None,
                        help="workspace folder (default: $GANAS_WORKSPACE or ./ganas-workspace)")
    store_flag(parser)
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument("--token", default=None, metavar="TOKEN",
                        help="access token (default: $GANAS_TOKEN); required unless bound to a loopback address. "
                             "Prefer the environment variable: a flag is visible in the process list")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="HOST",
                        help="a further name (HOST or HOST:PORT) clients reach the server by, e.g. behind a reverse "
                             "proxy or on a cluster; repeatable. Requests naming another Host are refused. "
                             "Required when bound to 0.0.0.0; '*' accepts any (only with a token)")
    parser.set_defaults(func=run)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r} must be a number from 0 to 65535")
    return port


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from nas.service.auth import LOGIN_PARAMETER, RedactLoginToken, check_binding, resolve_token
    from nas.service.guard import allowed_hosts

    token = resolve_token(args.token)
    check_binding(args.host, token)  # before anything is opened or bound
    hosts = allowed_hosts(args.host, args.port, args.allowed_host, token)
    import uvicorn

    from .app import create_web_app

    workspace = workspace_of(args)
    app = create_web_app(workspace, token, hosts=hosts)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/"
    print(f"ganas serve: workspace {workspace.root}, store {workspace.store_label}")
    print(f"ganas serve: dashboard {url}" + (f"?{LOGIN_PARAMETER}=<token>  (API: Authorization: Bearer <token>)"
                                             if token else ""))
    print(f"ganas serve: API {url}api, schema {url}openapi.json; stop with Ctrl-C (running searches continue)")
    print(f"ganas serve: answers requests for {hosts.describe()}")
    if hosts.any_host:
        print("ganas serve: WARNING: --allowed-host '*' accepts any Host header: a web page under any name that "
              "resolves to this server reaches it (DNS rebinding), and only the token stops it", file=sys.stderr)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info")  # configures logging
    logging.getLogger("uvicorn.access").addFilter(RedactLoginToken())
    uvicorn.Server(config).run()
    return 0
