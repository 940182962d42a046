"""Runner set-up: Beam on a Dask cluster (``--runner=DaskRunner``).

    python -m pipeline.m3w ... --runner=DaskRunner                  # local cluster on 127.0.0.1
    DASK_SCHEDULER=tcp://host:8786 python -m pipeline.m3w ... --runner=DaskRunner
    python -m pipeline.m3w ... --runner=DaskRunner --dask_client_address=tcp://host:8786

With no scheduler given, :class:`DaskRunner` starts a ``distributed.LocalCluster``
on 127.0.0.1 (2 worker processes, 1 thread each, no dashboard; ``--dask_workers``
and ``--dask_threads_per_worker`` change that) for the length of the job and
closes it afterwards. Workers of an external cluster must be able to import this
project (same code on ``PYTHONPATH``), as on any Beam runner.

Why not Beam's own ``apache_beam.runners.dask.dask_runner.DaskRunner`` (2.77)?
It cannot run this project's jobs correctly; its translation here fixes:

1. Multi-output ParDos: it hands the *whole* output of a ParDo (main and every
   tagged output mixed together) to every consumer, so ``with_outputs`` breaks
   (``ExtractDocuments`` media reach ``KeyDocs``: "tuple indices must be integers").
   Here bags are kept per PCollection and each tagged output is filtered out.
2. Only the last transform's bag is computed ("we can get away with computing
   just the last value"): branches that do not feed it (``WriteMatches``) never
   run. Here every leaf PCollection is computed, in one graph.
3. Side inputs are handed to the task as a lazy ``dask.bag`` that each task
   recomputes on its own (the whole upstream graph again, once per partition).
   Here a side input is a real graph dependency, materialised once.
4. ``metrics()`` raises NotImplementedError. Here every bundle runs under its own
   Beam ``MetricsContainer`` and returns its counter updates with its output, so
   counters are exact: a bundle retried after a lost worker counts once (the
   retry's result replaces the lost one). Only counters are collected
   (distributions and gauges are not).
5. Shuffles use dask's task-based shuffle keyed by ``tokenize`` (stable across
   processes), spread over more partitions than there are input files; a
   ``Reshuffle`` (Beam's: identity) repartitions its input over as many
   partitions, so the splits of one big WARC are read by every worker.
"""
from __future__ import annotations

import copy
import logging
import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from apache_beam import pvalue
from apache_beam.metrics.execution import MetricKey, MetricResult, MetricsContainer
from apache_beam.metrics.metric import MetricResults
from apache_beam.metrics.metricbase import MetricName
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.common import Receiver
from apache_beam.runners.runner import PipelineResult, PipelineRunner, PipelineState

log = logging.getLogger("pipeline.runners")

DASK_RUNNER = "pipeline.runners.DaskRunner"
RUNNER_ALIASES = {"DaskRunner": DASK_RUNNER, "dask": DASK_RUNNER}
SCHEDULER_ENV = "DASK_SCHEDULER"


def resolve_runner_args(args: list[str]) -> list[str]:
    """``--runner=DaskRunner`` (or ``dask``) → this module's runner; with it, the
    scheduler from ``$DASK_SCHEDULER`` unless ``--dask_client_address`` is given."""
    out = []
    dask = False
    args = list(args)
    for i, a in enumerate(args):   # "--runner X" → "--runner=X"
        if a == "--runner" and i + 1 < len(args):
            args[i:i + 2] = [f"--runner={args[i + 1]}"]
            break
    for a in args:
        if a.startswith("--runner="):
            name = a.split("=", 1)[1]
            name = RUNNER_ALIASES.get(name, name)
            dask = name == DASK_RUNNER
            a = f"--runner={name}"
        out.append(a)
    if dask and not any(a.startswith("--dask_client_address") for a in out):
        addr = os.environ.get(SCHEDULER_ENV, "").strip()
        if addr:
            out.append(f"--dask_client_address={addr}")
    return out


class DaskClusterOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--dask_workers", type=int, default=2,
                            help="worker processes of the local Dask cluster (when no "
                                 "--dask_client_address / $DASK_SCHEDULER is given)")
        parser.add_argument("--dask_threads_per_worker", type=int, default=1,
                            help="threads per worker process of the local Dask cluster")


def start_local_cluster(n_workers: int = 2, threads_per_worker: int = 1, **kw):
    """A ``distributed.LocalCluster`` on 127.0.0.1: worker processes (each under a
    nanny, which restarts a worker that dies), no dashboard, quiet logs."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                        processes=True, host="127.0.0.1", dashboard_address=None,
                        silence_logs=logging.ERROR, **kw)


# ------------------------------------------------------------ the translation

@dataclass
class _Tagged:
    """A tagged (non-main) output element inside a bag partition."""
    tag: str
    value: object


@dataclass
class _Counters:
    """A bundle's counter updates, carried in its output partition."""
    step: str
    values: dict = field(default_factory=dict)   # (namespace, name) -> int


class _Receiver(Receiver):
    def __init__(self, out: list, tag):
        self.out, self.tag = out, tag

    def receive(self, windowed_value):
        v = windowed_value.value
        self.out.append(v if self.tag is None else _Tagged(self.tag, v))


class _Receivers(dict):
    def __init__(self, out: list):
        super().__init__()
        self.out = out

    def __missing__(self, tag):
        r = self[tag] = _Receiver(self.out, tag)
        return r


def _windowed(x):
    from apache_beam.transforms.window import GlobalWindow
    from apache_beam.utils.windowed_value import WindowedValue

    return x if isinstance(x, WindowedValue) else WindowedValue(x, 0, (GlobalWindow(),))


def _run_bundle(items, fn, label, windowing, args, kwargs, side_specs, *side_values):
    """One dask partition = one Beam bundle of a ParDo, under its own metrics container."""
    from apache_beam.runners.common import DoFnRunner, DoFnState
    from apache_beam.runners.worker import statesampler
    from apache_beam.transforms.sideinputs import SideInputMap
    from apache_beam.utils.counters import CounterFactory

    fn = copy.deepcopy(fn)   # one DoFn instance per bundle, never shared between threads
    side_inputs = [SideInputMap(view, opts, [_windowed(v) for v in values])
                   for (view, opts), values in zip(side_specs, side_values)]
    out: list = []
    counter_factory = CounterFactory()
    container = MetricsContainer(label)
    sampler = statesampler.StateSampler("", counter_factory)
    prior = statesampler.get_current_tracker()
    statesampler.set_current_tracker(sampler)
    try:
        with sampler.scoped_state(label, "process", metrics_container=container):
            runner = DoFnRunner(fn, args, kwargs, side_inputs, windowing,
                                tagged_receivers=_Receivers(out), step_name=label,
                                state=DoFnState(counter_factory))
            runner.setup()
            runner.start()
            for it in items:
                runner.process(_windowed(it))
            runner.finish()
            runner.teardown()
    finally:
        statesampler.set_current_tracker(prior)
    counts = {(k.metric.namespace, k.metric.name): int(v)
              for k, v in container.get_cumulative().counters.items()}
    out.append(_Counters(label, counts))
    return out


def _main_only(part):
    return [x for x in part if not isinstance(x, (_Tagged, _Counters))]


def _tag_only(part, tag):
    return [x.value for x in part if isinstance(x, _Tagged) and x.tag == tag]


def _counters_only(part):
    return [x for x in part if isinstance(x, _Counters)]


def _concat_lists(parts):
    return [x for p in parts for x in p]


def _grouped(kv):
    from apache_beam.utils.windowed_value import WindowedValue

    k, items = kv
    return k, [e[1].value if isinstance(e[1], WindowedValue) else e[1] for e in items]


def _first(item):
    return item[0]


def _merge_counters(parts):
    total: dict = defaultdict(int)
    for p in parts:
        for c in p:
            for (ns, name), v in c.values.items():
                total[(c.step, ns, name)] += v
    return dict(total)


def _count(part):
    return sum(1 for _ in part)


def _grouped_part(part):
    return [_grouped(kv) for kv in part]


class _Spec:
    """The literal arguments of one ParDo's bundles (a plain object, so dask
    passes it through untouched)."""

    def __init__(self, fn, label, windowing, args, kwargs, side_specs):
        self.fn, self.label, self.windowing = fn, label, windowing
        self.args, self.kwargs, self.side_specs = args, kwargs, side_specs


def _run_spec(items, spec, *side_values):
    return _run_bundle(items, spec.fn, spec.label, spec.windowing, spec.args, spec.kwargs,
                       spec.side_specs, *side_values)


class _Translator(PipelineVisitor):
    """Beam graph → dask bags, one per PCollection.

    Every per-partition step is a plain materialised layer (not dask's Blockwise
    map_partitions): dask fuses Blockwise chains per output collection, which
    copies a ParDo into each of its consumers (each tagged output, the counters)
    and runs its bundles — reads, writes — several times over."""

    def __init__(self, shuffle_partitions: int):
        import uuid

        self.bags: dict = {}        # PCollection -> dask bag
        self.consumed: set = set()  # PCollections someone reads
        self.counter_bags: list = []
        self.shuffle_partitions = shuffle_partitions
        self._run = uuid.uuid4().hex[:12]   # keys never collide with another job's
        self._n = 0

    def _partitionwise(self, prefix, func, bag, *literals, deps=()):
        from dask._task_spec import Task, TaskRef
        from dask.bag.core import Bag
        from dask.highlevelgraph import HighLevelGraph

        self._n += 1
        name = f"{prefix}-{self._run}-{self._n}"
        refs = [TaskRef(d.key) for d in deps]
        dsk = {(name, i): Task((name, i), func, TaskRef((bag.name, i)), *literals, *refs)
               for i in range(bag.npartitions)}
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=[bag, *deps])
        return Bag(graph, name, bag.npartitions)

    def visit_transform(self, node):
        import apache_beam as beam
        from apache_beam.runners.dask.overrides import (_Create, _Flatten, _GroupAlsoByWindow,
                                                        _GroupByKeyOnly, _Read, _Reshuffle)
        from dask import bag as db

        t = node.transform
        ins = [p for p in node.inputs if not isinstance(p, pvalue.PBegin)]
        self.consumed.update(ins)
        for si in node.side_inputs:
            self.consumed.add(si.pvalue)
        cls = type(t)
        if cls is _Create:
            values = list(t.values)
            n = max(1, min(len(values), self.shuffle_partitions))
            self._set(node, db.from_sequence(values, npartitions=n))
        elif cls is _Flatten:
            self._set(node, db.concat([self.bags[p] for p in ins]))
        elif cls is _GroupByKeyOnly:
            bag = self.bags[ins[0]]
            if bag.npartitions < self.shuffle_partitions:
                bag = bag.repartition(npartitions=self.shuffle_partitions)
            grouped = bag.groupby(_first, shuffle="tasks")
            self._set(node, self._partitionwise("gbk", _grouped_part, grouped))
        elif cls is _Reshuffle:
            # where a pipeline asks for its work to be spread (input files, WARC
            # splits): over every partition, not left where it was made
            bag = self.bags[ins[0]]
            if bag.npartitions < self.shuffle_partitions:
                bag = bag.repartition(npartitions=self.shuffle_partitions)
            self._set(node, bag)
        elif cls is _GroupAlsoByWindow:   # global windows only: identity
            self._set(node, self.bags[ins[0]])
        elif cls is _Read or not ins:
            raise NotImplementedError(
                f"{node.full_label}: {cls.__name__} is not supported on the DaskRunner "
                "(start the pipeline from beam.Create)")
        elif isinstance(t, beam.ParDo):
            self._pardo(node, ins)
        else:
            raise NotImplementedError(f"{node.full_label}: {cls.__name__} is not supported "
                                      "on the DaskRunner")

    def _pardo(self, node, ins):
        t = node.transform
        side_specs = [(type(si), si._view_options()) for si in t.side_inputs]
        side_items = [self.bags[si.pvalue].reduction(list, _concat_lists, split_every=False)
                      for si in t.side_inputs]
        spec = _Spec(t.fn, node.full_label, ins[0].windowing, list(t.args), dict(t.kwargs),
                     side_specs)
        bag = self._partitionwise(_token(node.full_label), _run_spec, self.bags[ins[0]], spec,
                                  deps=side_items)
        self.counter_bags.append(self._partitionwise("counters", _counters_only, bag))
        for tag, pcoll in node.outputs.items():
            if tag is None or tag == "None":
                self.bags[pcoll] = self._partitionwise("main", _main_only, bag)
            else:
                self.bags[pcoll] = self._partitionwise("tagged", _tag_only, bag, tag)

    def _set(self, node, bag):
        for pcoll in node.outputs.values():
            self.bags[pcoll] = bag

    def outputs(self):
        """Every leaf PCollection (read by nobody), reduced to its element count,
        and every bundle's counters merged: one list of dask collections."""
        from dask import bag as db

        leaves = [b for p, b in self.bags.items() if p not in self.consumed]
        items = [b.reduction(_count, sum, split_every=False) for b in leaves]
        counters = None
        if self.counter_bags:
            counters = db.concat(self.counter_bags).reduction(
                list, _merge_counters, split_every=False)
        return items, counters


def _token(label: str) -> str:
    import re

    return "beam_" + re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")[:80]


class DaskMetrics(MetricResults):
    """Counters gathered from every bundle (exactly once per successful bundle)."""

    def __init__(self, counters: dict | None):
        self._counters = counters

    @property
    def available(self) -> bool:
        return self._counters is not None

    def query(self, filter=None):
        results = []
        for (step, ns, name), v in sorted((self._counters or {}).items()):
            key = MetricKey(step, MetricName(ns, name))
            if self.matches(filter, key):
                results.append(MetricResult(key, v, v))
        return {self.COUNTERS: results, self.DISTRIBUTIONS: [], self.GAUGES: [],
                self.STRINGSETS: [], self.BOUNDED_TRIES: []}


class DaskRunnerResult(PipelineResult):
    def __init__(self, client, futures, counters_future, cluster=None):
        super().__init__(PipelineState.RUNNING)
        self.client, self.futures, self.counters_future = client, futures, counters_future
        self.cluster = cluster
        self._counters = None
        self._lock = threading.Lock()

    def wait_until_finish(self, duration=None):
        import time

        from distributed import TimeoutError as DaskTimeout

        with self._lock:
            if self._state in (PipelineState.DONE, PipelineState.FAILED, PipelineState.CANCELLED):
                return self._state
            deadline = None if duration is None else time.monotonic() + duration / 1000
            try:
                for f in self.futures:   # a worker's error is raised here
                    f.result(timeout=None if deadline is None
                             else max(0.0, deadline - time.monotonic()))
                if self.counters_future is not None:
                    self._counters = self.counters_future.result(
                        timeout=None if deadline is None
                        else max(0.0, deadline - time.monotonic()))
                self._state = PipelineState.DONE
            except (DaskTimeout, TimeoutError):
                return self._state
            except BaseException:
                self._state = PipelineState.FAILED
                raise
            finally:
                if self._state != PipelineState.RUNNING:
                    self._shutdown()
            return self._state

    def _shutdown(self):
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def cancel(self):
        try:
            self.client.cancel(list(self.futures))
        finally:
            self._state = PipelineState.CANCELLED
            self._shutdown()
        return self._state

    def metrics(self):
        return DaskMetrics(self._counters if self._state == PipelineState.DONE else None)


class DaskRunner(PipelineRunner):
    """Runs a (bounded, globally windowed) Beam pipeline as one dask graph on a
    ``distributed`` cluster; see the module docstring for what differs from
    Beam's own DaskRunner."""

    def run_pipeline(self, pipeline, options):
        from apache_beam.runners.dask.dask_runner import DaskOptions
        from apache_beam.runners.dask.overrides import dask_overrides
        from distributed import Client

        dopts = options.view_as(DaskOptions).get_all_options(drop_default=True, current_only=True)
        npartitions = dopts.pop("npartitions", None)
        dopts.pop("partition_size", None)
        copts = options.view_as(DaskClusterOptions)
        cluster = None
        if not dopts.get("address") and not dopts.get("scheduler_file"):
            cluster = start_local_cluster(copts.dask_workers, copts.dask_threads_per_worker)
            dopts["address"] = cluster.scheduler_address
        try:
            client = Client(set_as_default=False, **dopts)
            threads = sum(client.nthreads().values()) or 1
            pipeline.replace_all(dask_overrides())
            tr = _Translator(npartitions or max(2, 2 * threads))
            pipeline.visit(tr)
            items, counters = tr.outputs()
            # one graph: every task is computed once, whichever outputs it feeds
            both = items + ([counters] if counters is not None else [])
            # no graph optimisation: dask fuses a bag task into each of its consumers
            # (each tagged output, the counters), which would run every bundle many times
            computed = client.compute(both, optimize_graph=False) if both else []
            futures = computed[:len(items)]
            counters_future = computed[len(items)] if counters is not None else None
        except BaseException:
            if cluster is not None:
                cluster.close()
            raise
        return DaskRunnerResult(client, futures, counters_future, cluster)
