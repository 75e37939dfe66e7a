"""How fast the `pdf` source lists and renders pages, and how fast `sources prepare` turns them
into a document set (render + ink filter + mask + resize + JPEG/PNG writes).

    python bench/pdf_pages.py cache/debian-docs/tree --workers 1 2

Build the PDF tree first with recipes/offline/pages.sh. Numbers depend on the machine's load:
report them with `uptime`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import time

from docsynth import config as config_mod
from docsynth import plugins
from docsynth.options import build
from docsynth.sources.prepare import prepare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="folder of PDFs (searched recursively)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--max-pages", type=int, default=2)
    ap.add_argument("--long-side", type=int, default=640)
    args = ap.parse_args()
    options = {"root": args.root, "max_pages": args.max_pages, "long_side": args.long_side,
               "orientation": "portrait", "seed": 42}
    source = plugins.get("source", "pdf")
    t = time.perf_counter()
    refs = source.list_documents(build(source, options))
    listing = time.perf_counter() - t
    pdfs = len({r.path for r in refs})
    print(f"listing: {len(refs)} candidate pages from {pdfs} PDFs in {listing:.2f} s "
          f"({1000 * listing / max(pdfs, 1):.1f} ms per PDF)")
    t = time.perf_counter()
    n = min(len(refs), 100)
    for ref in refs[:n]:
        with contextlib.suppress(Exception):
            source.load_document(ref)
    render = time.perf_counter() - t
    print(f"render only, 1 process: {1000 * render / max(n, 1):.1f} ms per page ({n} pages)")
    for workers in args.workers:
        out = tempfile.mkdtemp(prefix="bench-pdf-")
        cfg = config_mod.merge(config_mod.defaults(), {"sources": {
            "mix": {"pdf": "all"}, "out": out, "workers": workers, "jpeg_quality": 90,
            "options": {"pdf": options}}})
        t = time.perf_counter()
        summary = prepare(cfg)
        seconds = time.perf_counter() - t
        print(f"prepare, {workers} worker(s): {summary['documents']} pages in {seconds:.1f} s "
              f"({summary['documents'] / seconds:.1f} pages/s; load average {os.getloadavg()[0]:.1f})")
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
