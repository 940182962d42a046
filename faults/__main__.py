"""python -m faults: the fault suite, printing figures.

Cases: the adversarial corpus (faults.corpus) through the job's stages, one
child process per case with a time bound; the input kinds of faults.inputs
(ARC, whole-file compressed WARCs, br/zstd bodies, cut and oversized tars, long
csv cells, binary parquet urls, a truncated checkpoint), each against its exact
expected counters; the fetcher against hostile loopback
routes with every connection recorded; the job SIGKILLed while reading and while
writing, and one Dask worker killed mid-job, each compared with a clean run.
Known bugs in other modules are counted as such, not hidden.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    from shards.cli import Parser

    ap = Parser(prog="python -m faults", description="The fault suite: adversarial inputs, hostile "
                "fetches, kills; prints cases, crashes, hangs, samples lost or duplicated.")
    ap.add_argument("--no-kills", action="store_true", help="skip the kill/rerun scenarios")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from faults import kills
    from faults.corpus import build_corpus, fetch_cases
    from faults.inputs import build_input_cases
    from faults.run import run_case, run_fetch_cases
    from tests.helpers.http_server import LoopbackServer

    tmp = Path(tempfile.mkdtemp(prefix="faults-"))
    cases_run = crashes = hangs = lost = dup = known = failed = 0
    try:
        print(f"adversarial corpus → {tmp}")
        cases = build_corpus(str(tmp / "corpus"))
        total_bytes = total_s = 0.0
        for c in cases:
            r = run_case(c)
            cases_run += 1
            crashes += r.status == "crash"
            hangs += r.status == "hang"
            known += bool(r.findings)
            total_bytes += r.input_bytes
            total_s += r.seconds
            drops = {k: v for k, v in r.counts.items() if "drop" in k or k.startswith("fault_")}
            print(f"  {c.name:18s} {r.status:5s} {r.seconds:6.1f}s  {c.note}")
            print(f"  {'':18s} drops: {drops or '-'}")
            for f in r.findings:
                print(f"  {'':18s} BUG: {f}")
            if r.error:
                print(f"  {'':18s} {r.error.splitlines()[0]}")
        print("input kinds (each with its exact expected counters):")
        for c in build_input_cases(str(tmp / "inputs")):
            r = run_case(c)
            cases_run += 1
            crashes += r.status == "crash"
            hangs += r.status == "hang"
            failed += r.status == "wrong"
            shown = {k: v for k, v in sorted(r.counts.items()) if v}
            print(f"  {c.name:28s} {r.status:5s} {r.seconds:5.1f}s  {c.note}")
            print(f"  {'':28s} counts: {shown or '-'}")
            for w in r.wrong:
                print(f"  {'':28s} WRONG: {w}")
            if r.error:
                print(f"  {'':28s} {r.error.splitlines()[0]}")
        with LoopbackServer() as srv:
            results, audit = run_fetch_cases(fetch_cases(srv))
        for r in results:
            cases_run += 1
            crashes += r.status == "crash"
            hangs += r.status == "hang"
            failed += r.status == "wrong"
            print(f"  fetch {r.name:28s} {r.status:5s} {r.seconds:5.2f}s reason={r.reason} "
                  f"(expect {r.expect}) requests={r.requests}")
        private = len(audit.private_connects())
        print(f"  connections: {len(audit.connects)} (to 127.0.0.1 only: {private == 0}), "
              f"to private/link-local addresses: {private}, DNS lookups: {len(audit.dns_lookups())}")
        if not args.no_kills:
            from pipeline.sample import build_sample

            warc = tmp / "sample.warc.gz"
            build_sample(str(warc), max_pages=12)
            clean = tmp / "clean"
            t0 = time.monotonic()
            rc, log = kills.run(clean, [warc])
            print(f"  clean run (DirectRunner)       rc={rc} {time.monotonic() - t0:5.1f}s "
                  f"{len(kills.shard_keys(clean))} samples")
            for point, pred in (("reading", kills.when_reading(warc)),
                                ("writing", kills.when_writing(tmp / "k-writing"))):
                out = tmp / f"k-{point}"
                cases_run += 1
                proc = kills.cli(out, [warc])
                hit = kills.kill_at(proc, pred)
                bad = kills.visible_state_ok(out)
                rc, _ = kills.run(out, [warc])
                same = kills.snapshot(out) == kills.snapshot(clean)
                lo, du = kills.lost_and_duplicated(clean, out)
                lost, dup = lost + lo, dup + du
                failed += (not hit) or bool(bad) or rc != 0 or not same
                print(f"  SIGKILL while {point:8s}        killed={hit} reader-visible problems={len(bad)} "
                      f"rerun rc={rc} identical={same} lost={lo} dup={du}")
            out = tmp / "k-dask"
            cases_run += 1
            t0 = time.monotonic()
            rc, _, pid = kills.dask_worker_kill_run(out, [warc])
            tars = lambda d: {n: b for n, b in kills.snapshot(d).items() if n.endswith(".tar")}
            same = rc == 0 and tars(out) == tars(clean)
            lo, du = kills.lost_and_duplicated(clean, out)
            lost, dup = lost + lo, dup + du
            failed += (not pid) or not same
            print(f"  Dask worker {pid} killed mid-ExtractDocuments: rc={rc} "
                  f"{time.monotonic() - t0:5.1f}s identical shards={same} lost={lo} dup={du}")
        print()
        print(f"cases run: {cases_run}")
        print(f"crashes: {crashes}")
        print(f"hangs: {hangs}")
        print(f"samples lost: {lost}   duplicated: {dup}")
        print(f"wrong outcome: {failed}")
        print(f"known bugs in other modules found: {known} (see BUG lines)")
        print(f"throughput on the adversarial corpus: {total_bytes / 1e6:.1f} MB of (gzip'd WARC) input in "
              f"{total_s:.1f}s of case time ({len(cases) / total_s:.2f} cases/s, each in its own "
              "child process incl. start-up)")
        return 0 if crashes == hangs == lost == dup == failed == 0 else 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
