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


class CountingDoFn(beam.DoFn):
    """A DoFn with ``self.counts`` (Beam counters + progress line)."""

    progress_dir = None
    namespace = "m3w"

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



def drive(kind: str, namespace: str, output: str, files: list[str], options: dict,
          beam_args: list[str], build, progress_fields, quiet: bool = False,
          log_file: str | None = None) -> int:
    """The driver's part every job shares: the run id, the output folder, the
    pipeline run with its progress line, then manifest, report and summary.
    ``build(p, run_id, progress_dir)`` adds the job's graph to pipeline ``p``."""
    import shutil
    import time

    from apache_beam.io.filesystems import FileSystems

    run_id = make_run_id(files, options)
    if not FileSystems.exists(output):
        FileSystems.mkdirs(output)
    progress_dir = tempfile.mkdtemp(prefix=f"{kind}-progress-")
    log_file = log_file or default_log_file(output, kind)
    t0 = time.monotonic()
    try:
        p = beam.Pipeline(options=beam_options(beam_args))
        build(p, run_id, progress_dir)
        result = run_quietly(p, progress_dir, log_file, kind, progress_fields, quiet)
    except Exception as e:
        print(f"error: the {kind} job failed: {type(e).__name__}: {e}\n(details in {log_file})",
              file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(progress_dir, ignore_errors=True)
    finish_run(result, output, kind, namespace, run_id, options, files,
               time.monotonic() - t0, log_file)
    return 0


def finish_run(result, out_dir: str, kind: str, namespace: str, run_id: str, options: dict,
               files: list[str], seconds: float, log_file: str) -> dict:
    """Manifest (only this run's complete shards), stats.json, funnel.png, summary."""
    counters = report.counters_from_result(result, namespace)
    manifest = write_manifest(out_dir, kind, run_id, options, report.data_counters(counters))
    stats = report.write_run_report(out_dir, kind, counters, manifest, files)
    print(report.summary_text(kind, stats, out_dir, seconds))
    print(f"   log: {log_file}")
    return stats
