#!/usr/bin/env python3
"""Serve a static folder (the offline demo, `www/`) on 127.0.0.1 and print its URL.

    scripts/serve_www.py [--dir www] [--port 8000]   # --port 0 (or 8000 taken): a free port

Standard library only. What a static host must get right for the demo, and this server does:
`.wasm` as `application/wasm` (streaming compilation), `.skedge` as `application/octet-stream`,
`.webmanifest` as `application/manifest+json`, a `Content-Length` on every file (the artifact
progress bar), and `Cache-Control: no-cache` so the service worker, not the HTTP cache, decides
what is fresh. The first line printed is the URL (the tests read it).

A demo folder (one with sw.js) is served only if its precache.js matches its files: the service
worker caches what precache.js lists and installs a new version only when precache.js changes, so
a folder edited (or pulled) after scripts/build_www.sh ran would keep every returning visitor on
the old files. `--allow-stale` serves it anyway, with a warning. `--write-precache PAGE_FILE...`
is the other half, what scripts/build_www.sh runs: it writes DIR/precache.js (the page's own
files, vendor/ and models/, and a digest of them and sw.js as the version) and exits.
"""

from __future__ import annotations

import argparse
import errno
import functools
import hashlib
import http.server
import json
import re
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


# What the service worker caches besides the page's own files: every file under these folders.
PRECACHED_DIRS = ("vendor", "models")
PRECACHE_JS = re.compile(r"self\.SKEDGE_PRECACHE = (\{.*\});\s*$", re.S)


def precache(folder: Path, page_files: list) -> dict:
    """precache.js's object for `folder`: `files` (the scope root "./", the page's own files, every
    file under vendor/ and models/; sw.js is the worker itself, not cached) and `version`, a
    digest of those files' paths and contents and of sw.js. Raises OSError for a missing file."""
    files = {f for f in page_files if f != "sw.js"}
    for d in PRECACHED_DIRS:
        files.update(
            p.relative_to(folder).as_posix()
            for p in (folder / d).rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
    files = sorted(files)
    digest = hashlib.sha256()
    for f in files + ["sw.js"]:
        digest.update(f.encode() + b"\0" + hashlib.sha256((folder / f).read_bytes()).digest())
    return {"version": digest.hexdigest()[:16], "files": ["./"] + files}


def write_precache(folder: Path, page_files: list) -> dict:
    spec = precache(folder, page_files)
    (folder / "precache.js").write_text(
        "// Written by scripts/build_www.sh: what the service worker caches, and its version.\n"
        f"self.SKEDGE_PRECACHE = {json.dumps(spec, indent=1)};\n", encoding="utf-8")
    return spec


def stale(folder: Path) -> str | None:
    """Why `folder`'s precache.js does not describe its files, or None when it does."""
    path = folder / "precache.js"
    if not path.is_file():
        return "precache.js is missing"
    match = PRECACHE_JS.search(path.read_text(encoding="utf-8", errors="replace"))
    try:
        recorded = json.loads(match.group(1)) if match else None
        listed = recorded["files"]
        assert isinstance(recorded["version"], str) and all(isinstance(f, str) for f in listed)
    except (ValueError, TypeError, KeyError, AssertionError):
        return "precache.js is not what scripts/build_www.sh writes"
    page = [f for f in listed if f != "./" and f.split("/")[0] not in PRECACHED_DIRS]
    try:
        now = precache(folder, page)
    except OSError as err:
        return f"{Path(err.filename).relative_to(folder) if err.filename else 'a file'} is listed in precache.js but missing"
    if now == recorded:
        return None
    gone, new = sorted(set(listed) - set(now["files"])), sorted(set(now["files"]) - set(listed))
    what = "; ".join(filter(None, [gone and f"no longer there: {', '.join(gone[:5])}",
                                   new and f"not listed: {', '.join(new[:5])}"]))
    return f"the files changed since precache.js was written (version {recorded['version']}, now {now['version']}{'; ' + what if what else ''})"


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}
    quiet = False

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def handle(self) -> None:
        # A browser drops downloads it no longer needs (another model picked, a tab closed, a
        # service worker's precache given up): not the server's error, no traceback.
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError) as err:
            self.close_connection = True
            self.log_message('"%s": the client closed the connection (%s)', getattr(self, "requestline", ""), type(err).__name__)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        if not self.quiet:
            super().log_message(format, *args)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent.parent / "www")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--quiet", action="store_true", help="no request log")
    parser.add_argument("--allow-stale", action="store_true",
                        help="serve a demo folder whose precache.js does not match its files (warns)")
    parser.add_argument("--write-precache", nargs="+", metavar="PAGE_FILE",
                        help="write DIR/precache.js for these page files and exit (scripts/build_www.sh)")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"serve_www: {args.dir} is not a directory", file=sys.stderr)
        return 1
    if args.write_precache:
        try:
            spec = write_precache(args.dir, args.write_precache)
        except OSError as err:
            print(f"serve_www: cannot write {args.dir}/precache.js: {err}", file=sys.stderr)
            return 1
        print(f"{len(spec['files']) - 1} files (and ./) cached by the service worker, version {spec['version']}", file=sys.stderr)
        return 0
    if (args.dir / "sw.js").is_file() and (problem := stale(args.dir)):
        default = args.dir.resolve() == Path(__file__).resolve().parent.parent / "www"
        build = "scripts/build_www.sh" if default else f"scripts/build_www.sh --out {args.dir} (with its --models or --fixtures)"
        print(f"serve_www: {'WARNING: ' if args.allow_stale else ''}{args.dir} is not the build its service "
              f"worker caches: {problem}. Visitors who came before would keep the old files (or the "
              f"page would not work offline at all). Rebuild it: {build}"
              f"{' (serving it anyway: --allow-stale)' if args.allow_stale else '; or pass --allow-stale to serve it anyway'}.",
              file=sys.stderr)
        if not args.allow_stale:
            return 1
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
