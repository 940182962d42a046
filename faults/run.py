"""Running the adversarial corpus through the job's stages, one case per child
process with a wall-clock bound, and the fetch cases against the loopback
server with every socket connection and name lookup recorded.

A case *crashes* when anything escapes the stages' own error handling (an
exception, a signal, running out of the child's memory cap); it *hangs* when it
passes its time bound. Everything else must come back as counted drops.
"""
from __future__ import annotations

import ipaddress
import multiprocessing as mp
import os
import resource
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field

CASE_TIMEOUT_S = 90.0
CHILD_MEMORY_CAP = 8 << 30          # address space of one case's child process
BODY_BOUND = 64 << 20               # a record body above this (from a small record) is unbounded


@dataclass
class CaseResult:
    name: str
    status: str                      # ok | crash | hang
    seconds: float
    input_bytes: int
    counts: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)   # bugs in someone else's module
    error: str = ""
    wrong: list = field(default_factory=list)      # an input case's outcome differs from its expectation


class _Counts(Counter):
    def inc(self, name, n=1):
        self[name] += n

    def flush(self):
        pass


def _stages(path: str) -> tuple[dict, list]:
    """Read → extract → images, as the job's DoFns do (same functions, same
    catch-all for extraction errors as ExtractDocuments)."""
    from pipeline.documents import candidate_document, image_requests, media_key
    from pipeline.extract import ExtractConfig
    from pipeline.filters import FilterConfig, LangId
    from pipeline.images import ImageConfig, process_image
    from pipeline.read import InputError, iter_records

    counts, findings = _Counts(), []
    fcfg, ecfg, icfg = FilterConfig(), ExtractConfig(), ImageConfig()
    langid = LangId()
    media, docs = {}, []
    record_size = os.path.getsize(path)
    try:
        records = list(iter_records(path, counts))
    except InputError as e:   # a file the reader refuses whole: counted, as _ReadFile does
        counts.inc(e.reason)
        records = []
    for rec in records:
        counts.inc("records_read")
        if len(rec.body) > max(BODY_BOUND, 64 * record_size):
            findings.append(f"pipeline/read.py inflated a {record_size:,}-byte record to "
                            f"{len(rec.body):,} bytes in memory (no bound on the decoded body)")
            counts.inc("fault_unbounded_body")
            continue   # what happens next is that bug's consequence, not a new case
        if rec.is_media:
            media[media_key(rec.url)] = rec.body
            continue
        counts.inc("pages")
        try:
            out = candidate_document(rec, fcfg, ecfg, langid)
        except Exception as e:   # ExtractDocuments counts this and goes on
            counts.inc("page_drop_extract_error")
            findings.append(f"extraction raised {type(e).__name__}: {str(e)[:120]}")
            continue
        for reason, n in out.drops.items():
            counts.inc(f"drop_{reason}", n)
        if out.extra_parts:
            counts.inc("document_split_extra_parts", out.extra_parts)
        for doc in out.values():
            counts.inc("candidate_documents")
            docs.append(doc)
    for doc in docs:
        for url_key, _ref in image_requests(doc):
            counts.inc("images_requested")
            if url_key not in media:
                counts.inc("drop_image_not_archived")
                continue
            p = process_image(media[url_key], icfg, source=url_key)
            counts.inc("images_ok" if p.ok else f"drop_image_{p.reason}")
    return dict(counts), findings


def _child(case, conn) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_CAP, CHILD_MEMORY_CAP))
    except (ValueError, OSError):
        pass
    try:
        if hasattr(case, "expect"):   # faults.inputs: an input kind with an exact expectation
            from faults.inputs import run_input_stage

            tally = _Counts()
            run_input_stage(case, tally)
            counts, findings = dict(tally), []
        else:
            counts, findings = _stages(case.path)
        conn.send(("ok", counts, findings, ""))
    except BaseException as e:  # a crash: anything the stages let escape
        conn.send(("crash", {}, [], f"{type(e).__name__}: {e}\n{traceback.format_exc()[-2000:]}"))
    finally:
        conn.close()


def run_case(case, timeout_s: float = CASE_TIMEOUT_S) -> CaseResult:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    t0 = time.monotonic()
    proc = ctx.Process(target=_child, args=(case, child), daemon=True)
    proc.start()
    child.close()
    size = (os.path.getsize(case.path) if os.path.isfile(case.path) else
            sum(os.path.getsize(os.path.join(case.path, n)) for n in os.listdir(case.path)))
    status, counts, findings, error = "hang", {}, [], ""
    if parent.poll(timeout_s):
        try:
            status, counts, findings, error = parent.recv()
        except EOFError:
            status, error = "crash", "child died without a result"
    proc.join(timeout=5 if status != "hang" else 0)
    if proc.is_alive():
        proc.kill()
        proc.join()
    if status == "hang":
        error = f"no result within {timeout_s:.0f}s"
    elif status == "ok" and proc.exitcode not in (0, None):
        status, error = "crash", f"exit code {proc.exitcode}"
    if status == "crash" and not error:
        error = f"child exit code {proc.exitcode}"
    wrong = []
    if status == "ok" and hasattr(case, "expect"):
        from faults.inputs import check_expectations

        wrong = check_expectations(case, counts)
        status = "wrong" if wrong else "ok"
    return CaseResult(case.name, status, time.monotonic() - t0, size, counts, findings, error, wrong)


# ------------------------------------------------------------------ fetching

class SocketAudit:
    """Every socket connect and name lookup in this process (sys.addaudithook;
    hooks cannot be removed, so one global recorder is switched on and off)."""

    _installed = False
    _active: "SocketAudit | None" = None
    _lock = threading.Lock()

    def __init__(self):
        self.connects: list[str] = []
        self.lookups: list[str] = []

    @classmethod
    def _hook(cls, event, args):
        rec = cls._active
        if rec is None:
            return
        if event == "socket.connect":
            addr = args[1]
            if isinstance(addr, tuple) and addr:
                rec.connects.append(str(addr[0]))
        elif event == "socket.getaddrinfo":
            rec.lookups.append(str(args[0]))

    def __enter__(self):
        with SocketAudit._lock:
            if not SocketAudit._installed:
                sys.addaudithook(SocketAudit._hook)
                SocketAudit._installed = True
            SocketAudit._active = self
        return self

    def __exit__(self, *exc):
        SocketAudit._active = None

    def private_connects(self) -> list[str]:
        """Connections to anything but 127.0.0.1 (the only allowed network)."""
        return [a for a in self.connects if a != "127.0.0.1"]

    def dns_lookups(self) -> list[str]:
        """Lookups of names that are not IP literals (each would be DNS traffic)."""
        out = []
        for h in self.lookups:
            try:
                ipaddress.ip_address(h)
            except ValueError:
                out.append(h)
        return out


@dataclass
class FetchCaseResult:
    name: str
    status: str          # ok (expected drop, in time) | wrong | hang | crash
    reason: str | None
    expect: str
    seconds: float
    requests: int
    error: str = ""


def run_fetch_cases(cases, cfg=None) -> tuple[list[FetchCaseResult], SocketAudit]:
    from pipeline.fetch import FetchConfig, Fetcher

    cfg = cfg or FetchConfig(allowed_networks=("127.0.0.1/32",), timeout_s=3.0, retries=0,
                             max_bytes=1_000_000, max_redirects=5)
    fetcher = Fetcher(cfg)
    results = []
    with SocketAudit() as audit:
        for c in cases:
            t0 = time.monotonic()
            try:
                r = fetcher.fetch(c.url)
                dt = time.monotonic() - t0
                status = "ok" if (not r.ok and r.reason == c.expect) else "wrong"
                if dt > c.max_seconds:
                    status = "hang"
                results.append(FetchCaseResult(c.name, status, r.reason, c.expect, dt, r.requests))
            except Exception as e:   # Fetcher.fetch promises never to raise
                results.append(FetchCaseResult(c.name, "crash", None, c.expect,
                                               time.monotonic() - t0, 0,
                                               f"{type(e).__name__}: {e}"))
    return results, audit
