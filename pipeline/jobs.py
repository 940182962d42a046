"""What every job's driver shares: Beam options, quiet logs, the run id,
running with a progress line, and the end-of-run manifest/report/summary."""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from shards.writer import dumps, write_manifest

from . import report
from .progress import Counts, ProgressLine, QuietFds

log = logging.getLogger("pipeline.jobs")


class CountingDoFn(beam.DoFn):
    """A DoFn with ``self.counts`` (Beam counters + progress line) and, with
    ``--keep-dropped`` (:meth:`keeping`), its victims on the DROPPED output."""

    progress_dir = None
    namespace = "m3w"
    keep_dropped = None   # a pipeline.dropped.KeepDropped, or None (victims not kept)

    def keeping(self, cfg) -> "CountingDoFn":
        """This DoFn, emitting its victims when ``cfg`` is set (``--keep-dropped``)."""
        self.keep_dropped = cfg
        return self

    def drop(self, reason: str, n: int = 1, counter: str | None = None, **victim) -> list:
        """Count ``drop_<reason>`` (or ``counter``); with --keep-dropped also return
        the victim as a tagged output (``yield from self.drop(...)``), built from
        ``victim`` (shards.dropped.victim's fields: what, url, page_url, text, ...)."""
        self.counts.inc(counter or f"drop_{reason}", n)
        if self.keep_dropped is None or not victim:
            return []
        from shards.dropped import victim as make_victim

        from .dropped import DROPPED

        return [beam.pvalue.TaggedOutput(DROPPED, make_victim(reason, **victim))]

    def setup(self):
        self.counts = Counts(self.namespace, self.progress_dir)

    def finish_bundle(self):
        self.counts.flush()


def make_run_id(files: list[str], options: dict) -> str:
    """Same inputs and options → same id; shards of another run are never reused."""
    from apache_beam.io.filesystems import FileSystems

    h = hashlib.sha256()
    for f in files:
        size = FileSystems.match([f])[0].metadata_list[0].size_in_bytes
        h.update(f"{os.path.basename(f)}\0{size}\n".encode())
    h.update(dumps(options))
    return h.hexdigest()[:16]


def quiet_beam_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("apache_beam", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("pipeline").setLevel(logging.WARNING)


def beam_options(beam_args: list[str]) -> PipelineOptions:
    from .runners import resolve_runner_args

    # --runner=DaskRunner → pipeline.runners.DaskRunner (+ $DASK_SCHEDULER)
    args = resolve_runner_args(list(beam_args))
    if not any(a.startswith("--runner") for a in args):
        args.append("--runner=DirectRunner")
    runner = next(a.split("=", 1)[1] for a in args if a.startswith("--runner="))
    if runner == "DirectRunner":
        if not any(a.startswith("--direct_running_mode") for a in args):
            args.append("--direct_running_mode=multi_processing")
        if not any(a.startswith("--direct_num_workers") for a in args):
            args.append(f"--direct_num_workers={os.cpu_count() or 2}")
        # the same runner, its SDK workers forked from a copy of this process
        # instead of each importing Beam and the job again (pipeline/forkworkers.py)
        from .forkworkers import FORKING_DIRECT_RUNNER

        args = [f"--runner={FORKING_DIRECT_RUNNER}" if a == "--runner=DirectRunner" else a
                for a in args]
    return PipelineOptions(args)


def default_log_file(output: str, kind: str) -> str:
    """Beside the output when it is local; in the temp folder otherwise."""
    if "://" not in output:
        return os.path.join(output, f"{kind}.log")
    return os.path.join(tempfile.gettempdir(), f"{kind}.log")


def run_quietly(p, progress_dir, log_file, label, fields, quiet=False):
    """Run the pipeline with Beam's (and its workers') output in ``log_file``
    and only the progress line on the terminal."""
    os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
    with QuietFds(log_file) as fds:
        if quiet:
            result = p.run()
            result.wait_until_finish()
        else:
            with ProgressLine(progress_dir, fields, label, stream=fds.terminal):
                result = p.run()
                result.wait_until_finish()
    return result



def warm_up_after_fork(fn) -> None:
    """Run ``fn`` (imports the driver needs after the run) on a daemon thread while the
    pipeline runs, once no worker will be forked from this process (a fork
    during an import would copy its lock held); off the end of the command."""
    import threading

    from .forkworkers import FORK_DONE

    def run():
        FORK_DONE.wait()
        try:
            fn()
        except Exception:  # noqa: BLE001 - only a head start; the plot imports again
            log.debug("warm-up import failed", exc_info=True)

    threading.Thread(target=run, name="warm-up", daemon=True).start()


def drive(kind: str, namespace: str, output: str, files: list[str], options: dict,
          beam_args: list[str], build, progress_fields, quiet: bool = False,
          log_file: str | None = None, subdirs: list[str] = ()) -> int:
    """The driver's part every job shares: the run id, the output folder, the
    pipeline run with its progress line, then manifest, report and summary.
    ``build(p, run_id, progress_dir)`` adds the job's graph to pipeline ``p``;
    ``subdirs``: the job writes its shards to these folders of ``output`` (one
    manifest each) instead of ``output`` itself (pairs --split)."""
    import shutil
    import time

    from apache_beam.io.filesystems import FileSystems

    from .forkworkers import limit_malloc_arenas

    limit_malloc_arenas()   # bounded per-thread malloc arenas, here and in the workers
    run_id = make_run_id(files, options)
    if not FileSystems.exists(output):
        FileSystems.mkdirs(output)
    progress_dir = tempfile.mkdtemp(prefix=f"{kind}-progress-")
    log_file = log_file or default_log_file(output, kind)
    t0 = time.monotonic()
    try:
        p = beam.Pipeline(options=beam_options(beam_args))
        build(p, run_id, progress_dir)
        digest_inputs(p, files, output)
        result = run_quietly(p, progress_dir, log_file, kind, progress_fields, quiet)
    except Exception as e:
        print(f"error: the {kind} job failed: {type(e).__name__}: {e}\n(details in {log_file})",
              file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(progress_dir, ignore_errors=True)
    finish_run(result, output, kind, namespace, run_id, options, files,
               time.monotonic() - t0, log_file, subdirs)
    return 0


def digest_inputs(p, files: list[str], output: str) -> None:
    """The inputs' sha256 for the dataset card, computed by the workers."""
    from .card import digest_input, write_inputs

    (p | "InputFiles" >> beam.Create(files) | "SpreadInputs" >> beam.Reshuffle()
     | "DigestInputs" >> beam.Map(digest_input) | "GatherDigests" >> beam.combiners.ToList()
     | "WriteDigests" >> beam.Map(write_inputs, output))


def finish_run(result, out_dir: str, kind: str, namespace: str, run_id: str, options: dict,
               files: list[str], seconds: float, log_file: str, subdirs: list[str] = ()) -> dict:
    """Manifest (only this run's complete shards; one per subdir when the job
    splits its output), stats.json, funnel.png, summary."""
    from apache_beam.io.filesystems import FileSystems

    counters = report.counters_from_result(result, namespace)
    data = report.data_counters(counters)
    if subdirs:
        parts = {name: write_manifest(FileSystems.join(out_dir, name), kind, run_id,
                                      dict(options, split=name), data) for name in subdirs}
        manifest = {k: sum(m[k] for m in parts.values())
                    for k in ("num_shards", "num_samples", "bytes")}
    else:
        manifest = write_manifest(out_dir, kind, run_id, options, data)
    stats = report.write_run_report(out_dir, kind, counters, manifest, files)
    stats["sets"] = list(subdirs)  # for the summary only (stats.json is written)
    from .card import read_inputs, write_card

    inputs = read_inputs(out_dir)
    for name in subdirs or [None]:
        sub = FileSystems.join(out_dir, name) if name else out_dir
        write_card(sub, kind, parts[name] if name else manifest, stats, inputs)
    print(report.summary_text(kind, stats, out_dir, seconds))
    for name, m in (parts.items() if subdirs else ()):
        print(f"   {name}: {m['num_samples']:,} samples in {m['num_shards']} shards "
              f"→ {FileSystems.join(out_dir, name)}")
    print(f"   card: " + ", ".join(FileSystems.join(FileSystems.join(out_dir, n) if n else out_dir,
                                                    "card.md") for n in subdirs or [None]))
    print(f"   log: {log_file}")
    return stats
