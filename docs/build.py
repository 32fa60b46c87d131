#!/usr/bin/env python3
"""Build the documentation site, warnings as errors, and optionally serve it.

    python docs/build.py                  # -> docs/_build/html
    python docs/build.py --serve          # build, then serve on http://127.0.0.1:8000/
    python docs/build.py --out DIR -j 2   # another output folder, parallel build

Runs ``sphinx-build -W --keep-going -n -b html docs <out>``; needs ``pip install -e ".[docs]"``.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent


def build_command(out: Path, jobs: str = "1", fresh: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-b", "html", "-j", jobs]
    if fresh:
        cmd.append("-E")
    return [*cmd, str(DOCS), str(out)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS / "_build" / "html", help="output folder")
    parser.add_argument("-j", "--jobs", default="1", help="sphinx-build -j (default 1)")
    parser.add_argument("-E", "--fresh", action="store_true", help="rebuild every page")
    parser.add_argument("--serve", action="store_true", help="serve the built site afterwards")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--bind", default="127.0.0.1")
    args = parser.parse_args(argv)

    cmd = build_command(args.out, args.jobs, args.fresh)
    print("+", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    if rc != 0 or not args.serve:
        return rc
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(args.out))
    with http.server.ThreadingHTTPServer((args.bind, args.port), handler) as httpd:
        print(f"serving {args.out} on http://{args.bind}:{args.port}/ (Ctrl-C to stop)", flush=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
