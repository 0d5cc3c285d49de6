#!/usr/bin/env python3
"""Serve a static folder (the offline demo, `www/`) on 127.0.0.1 and print its URL.

    scripts/serve_www.py [--dir www] [--port 8000]   # --port 0 (or 8000 taken): a free port

Standard library only. What a static host must get right for the demo, and this server does:
`.wasm` as `application/wasm` (streaming compilation), `.skedge` as `application/octet-stream`,
`.webmanifest` as `application/manifest+json`, a `Content-Length` on every file (the artifact
progress bar), and `Cache-Control: no-cache` so the service worker, not the HTTP cache, decides
what is fresh. The first line printed is the URL (the tests read it).
"""

from __future__ import annotations

import argparse
import errno
import functools
import http.server
import sys
from pathlib import Path

MIME = {
    ".wasm": "application/wasm",
    ".skedge": "application/octet-stream",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}
    quiet = False

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        if not self.quiet:
            super().log_message(format, *args)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent.parent / "www")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--quiet", action="store_true", help="no request log")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"serve_www: {args.dir} is not a directory", file=sys.stderr)
        return 1
    if not (args.dir / "vendor" / "skedge").is_dir() and (args.dir / "index.html").is_file():
        print(f"serve_www: warning: {args.dir}/vendor/skedge is missing (run scripts/build_www.sh)",
              file=sys.stderr)
    Handler.quiet = args.quiet
    handler = functools.partial(Handler, directory=str(args.dir))
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    except OSError as err:
        if args.port == 0 or err.errno != errno.EADDRINUSE:
            print(f"serve_www: cannot listen on 127.0.0.1:{args.port}: {err}", file=sys.stderr)
            return 1
        print(f"serve_www: port {args.port} is taken; using a free one", file=sys.stderr)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)
    print(f"serving {args.dir} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
