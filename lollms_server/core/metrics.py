"""Prometheus metrics (the official prometheus_client), one registry per server.

Generations: requests, latency and time-to-first-token histograms, tokens, errors by kind, per surface and
binding. HTTP: requests and latency per route template. Gauges read at scrape time: queue depth and active
slots of the whole cluster (the Redis backend's shared numbers, read just before the scrape; with the memory
backend the cluster is this process) and of this replica, loaded binding instances and loaded models,
the usage ledger's write queue and losses.

prometheus_client itself is imported by the first scrape (or the first use that needs one of its objects: a
count from another thread, a label set it must check): until then requests are counted in plain numbers,
so start-up does not import it (``bench/bench_startup.py``).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Iterator, cast

from lollms_server.core.errors import SharedStateUnavailableError
from lollms_server.core.resources import ResourceManager, ResourceState

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector

    from lollms_server.core.services import Services

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _StateCollector:
    """Gauges computed from the live services when Prometheus scrapes (a prometheus_client collector)."""

    def __init__(self, services: "Services") -> None:
        self.s = services
        self.cluster: ResourceState | None = None  # set by refresh_cluster() before each scrape

    async def refresh_cluster(self) -> None:
        """Read the cluster's slot numbers (one Redis round trip with the redis backend); None when unreachable."""
        resources: ResourceManager = self.s.resources
        try:
            self.cluster = await resources.shared_state()
        except SharedStateUnavailableError:
            self.cluster = None

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        from prometheus_client.core import GaugeMetricFamily

        state = self.s.resources.state()
        up = GaugeMetricFamily("lollms_shared_state_up", "1 when the slot store answers (always 1 with backend memory).")
        up.add_metric([], 0 if self.cluster is None else 1)
        queue = GaugeMetricFamily("lollms_queue_depth", "Requests waiting for a compute slot in the whole cluster.")
        active = GaugeMetricFamily("lollms_active_slots", "Compute slots in use in the whole cluster.")
        if self.cluster is not None:  # absent while Redis is unreachable (no made-up numbers)
            queue.add_metric([], self.cluster.waiting)
            active.add_metric([], self.cluster.active)
        replica_queue = GaugeMetricFamily("lollms_replica_queue_depth", "Requests of this replica waiting for a slot.")
        replica_queue.add_metric([], state.waiting)
        replica_active = GaugeMetricFamily("lollms_replica_active_slots", "Compute slots this replica holds.")
        replica_active.add_metric([], state.active)
        limit = GaugeMetricFamily("lollms_slot_limit", "Compute slots of the whole cluster (0 = unlimited).")
        limit.add_metric([], state.limit or 0)
        instances = GaugeMetricFamily("lollms_binding_instances", "Binding instances by state.", labels=["state"])
        loaded = sum(1 for r in self.s.bindings.instances.values() if r.binding)
        instances.add_metric(["loaded"], loaded)
        instances.add_metric(["failed"], len(self.s.bindings.instances) - loaded)
        models = GaugeMetricFamily("lollms_loaded_models", "Models held in memory per binding instance.", labels=["binding"])
        for name, rec in sorted(self.s.bindings.instances.items()):
            if rec.binding is not None:
                models.add_metric([name], len(rec.binding.loaded_models()))
        yield from (up, queue, active, replica_queue, replica_active, limit, instances, models)
        yield from self._ledger()

    def _ledger(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The usage ledger's write path: records waiting, dropped (queue full or unwritable), failed writes."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        ledger = self.s.telemetry.ledger
        waiting = GaugeMetricFamily("lollms_usage_queue_depth", "Usage records waiting to be written.")
        waiting.add_metric([], float(getattr(ledger, "queued", 0)))
        dropped = CounterMetricFamily("lollms_usage_records_dropped", "Usage records lost (queue full, or not writable).")
        dropped.add_metric([], float(getattr(ledger, "dropped", 0)))
        failures = CounterMetricFamily("lollms_usage_write_failures",
                                       "Batches the ledger's store refused (e.g. Redis unreachable); retried.")
        failures.add_metric([], float(getattr(ledger, "write_failures", 0)))
        yield from (waiting, dropped, failures)


def _has_buckets(child: Any) -> bool:
    """prometheus_client's histogram child keeps a value per bucket and one for the sum (flush() adds to them)."""
    return isinstance(getattr(child, "_buckets", None), list) and hasattr(getattr(child, "_sum", None), "inc")


class _Observed:
    """Observations of one histogram child not yet flushed: their sum and how many fell in each bucket."""

    __slots__ = ("bounds", "counts", "total", "seen")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.total = 0.0
        self.seen = False

    def add(self, value: float) -> None:
        self.total += value
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bucket whose bound is >= value, as prometheus_client
        self.seen = True

    def reset(self) -> None:
        self.counts = [0] * len(self.bounds)
        self.total = 0.0
        self.seen = False


class Family:
    """One metric of this server as declared; its prometheus_client object is made when the metrics load."""

    __slots__ = ("kind", "name", "doc", "labels", "buckets")

    def __init__(self, kind: str, name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...] = ()) -> None:
        self.kind = kind  # "counter" or "histogram"
        self.name = name
        self.doc = doc
        self.labels = labels
        self.buckets = buckets


class Metrics:
    MAX_CACHED_CHILDREN = 4096  # label sets kept at hand (an HTTP method is chosen by the client: bounded here)
    MAX_UNLOADED_OBSERVATIONS = 4096  # kept as given until prometheus_client is loaded (then it is)

    def __init__(self) -> None:
        self._registry: CollectorRegistry | None = None  # made by _load(): the first scrape or use that needs it
        self._made: dict[Family, Any] = {}
        self._loading = threading.Lock()
        self._state: _StateCollector | None = None
        self._children: dict[tuple[Family, tuple[str, ...]], Any] = {}
        # counts and observations of the thread that built this (the event loop's), not yet in the metrics below:
        # a plain addition per request instead of a lock and a few calls; flush() moves them before each scrape
        self._owner = threading.get_ident()
        self._counts: dict[tuple[Family, tuple[str, ...]], list[float]] = {}
        self._observed: dict[tuple[Family, tuple[str, ...]], _Observed] = {}
        # observations made before prometheus_client is loaded, as given (its histograms say the buckets)
        self._unloaded: dict[tuple[Family, tuple[str, ...]], list[float]] = {}
        self._unloaded_count = 0
        self._first_seen: dict[tuple[Family, tuple[str, ...]], float] = {}  # when a label set waiting for its child came
        self.generations = Family("counter", "lollms_generations", "Generations by outcome.", ("surface", "binding", "status"))
        self.latency = Family("histogram", "lollms_generation_duration_seconds", "Generation duration.",
                              ("surface", "binding"), _LATENCY_BUCKETS)
        self.ttft = Family("histogram", "lollms_time_to_first_token_seconds", "Time to the first streamed token.",
                           ("surface", "binding"), _TTFT_BUCKETS)
        self.tokens = Family("counter", "lollms_tokens", "Tokens by kind (prompt, completion).", ("surface", "binding", "kind"))
        self.errors = Family("counter", "lollms_errors", "Failed generations and refused requests by kind.",
                             ("surface", "binding", "kind"))
        self.http = Family("counter", "lollms_http_requests", "HTTP requests by route template and status.",
                           ("method", "route", "status"))
        self.http_latency = Family("histogram", "lollms_http_request_duration_seconds", "Time to the response headers.",
                                   ("method", "route"), _LATENCY_BUCKETS)
        self._families = (self.generations, self.latency, self.ttft, self.tokens, self.errors, self.http, self.http_latency)

    @property
    def registry(self) -> CollectorRegistry:
        """The prometheus_client registry of these metrics (loads prometheus_client)."""
        self._load()
        assert self._registry is not None
        return self._registry

    def _load(self) -> None:
        """Import prometheus_client, make the metrics and move the observations made so far into them."""
        if self._registry is not None:
            return
        with self._loading:
            if self._registry is not None:
                return
            from prometheus_client import CollectorRegistry, Counter, Histogram

            registry = CollectorRegistry(auto_describe=True)
            for f in self._families:
                if f.kind == "counter":
                    self._made[f] = Counter(f.name, f.doc, list(f.labels), registry=registry)
                else:
                    self._made[f] = Histogram(f.name, f.doc, list(f.labels), buckets=f.buckets, registry=registry)
            if self._state is not None:
                registry.register(cast("Collector", self._state))
            self._registry = registry
            unloaded, self._unloaded, self._unloaded_count = self._unloaded, {}, 0
            for (family, labels), values in unloaded.items():
                for value in values:
                    self.observe(family, labels, value)

    def _deferrable(self, metric: Family, labels: tuple[str, ...]) -> bool:
        """Whether a first count or observation of ``labels`` can wait for prometheus_client: from the owner
        thread, with as many labels as declared (else prometheus_client checks them now, as it always did)."""
        return threading.get_ident() == self._owner and len(labels) == len(metric.labels)

    def inc(self, metric: Family, labels: tuple[str, ...], amount: float = 1.0) -> None:
        """``metric.labels(*labels).inc(amount)``: added to a plain number now, to the counter at the next scrape."""
        pending = self._counts.get((metric, labels))
        if pending is not None and amount >= 0 and threading.get_ident() == self._owner:
            pending[0] += amount
            return
        if self._registry is not None or amount < 0 or not self._deferrable(metric, labels) \
                or len(self._counts) >= self.MAX_CACHED_CHILDREN:
            child = self.child(metric, *labels)  # (a label set prometheus_client refuses fails here, as it always did)
            if amount < 0 or threading.get_ident() != self._owner or len(self._counts) >= self.MAX_CACHED_CHILDREN:
                child.inc(amount)  # (a negative amount raises, here, as it always did)
                return
        else:
            self._first_seen[(metric, labels)] = time.time()
        self._counts[(metric, labels)] = [amount]

    def observe(self, metric: Family, labels: tuple[str, ...], value: float) -> None:
        """``metric.labels(*labels).observe(value)``: counted in plain numbers now, in the histogram at the next scrape."""
        pending = self._observed.get((metric, labels))
        if pending is not None and value == value and threading.get_ident() == self._owner:  # (NaN: see below)
            pending.add(value)
            return
        if self._registry is None:
            with self._loading:
                if self._registry is None and self._deferrable(metric, labels) \
                        and self._unloaded_count < self.MAX_UNLOADED_OBSERVATIONS:
                    self._unloaded.setdefault((metric, labels), []).append(value)
                    self._unloaded_count += 1
                    self._first_seen.setdefault((metric, labels), time.time())
                    return
        child = self.child(metric, *labels)
        bounds = getattr(child, "_upper_bounds", None)
        if (value != value or threading.get_ident() != self._owner or len(self._observed) >= self.MAX_CACHED_CHILDREN
                or bounds is None or not _has_buckets(child)):
            child.observe(value)  # NaN falls in no bucket there: it goes straight to prometheus_client
            return
        pending = self._observed[(metric, labels)] = _Observed(tuple(bounds))
        pending.add(value)

    def flush(self) -> None:
        """Move what ``inc`` and ``observe`` gathered into the prometheus_client metrics (before each scrape)."""
        self._load()
        for (counter, labels), pending in self._counts.items():
            child = self.child(counter, *labels)  # (a label set counted once, even by 0, is listed from then on)
            if pending[0]:
                amount, pending[0] = pending[0], 0.0
                child.inc(amount)
        for (histogram, hlabels), observed in self._observed.items():
            if observed.seen:
                child = self.child(histogram, *hlabels)
                child._sum.inc(observed.total)
                for i, n in enumerate(observed.counts):
                    if n:
                        child._buckets[i].inc(n)
                observed.reset()

    def child(self, metric: Family, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set (prometheus_client's lookup costs a lock
        and label checks on every call; this is called several times per request)."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            self._load()
            child = self._made[metric].labels(*labels)
            first = self._first_seen.pop(key, None)
            if first is not None and isinstance(getattr(child, "_created", None), float):
                child._created = first  # the series was created by its first count, not by the scrape that listed it
            if len(self._children) < self.MAX_CACHED_CHILDREN:
                self._children[key] = child
        return child

    def watch(self, services: "Services") -> None:
        """Read gauges from ``services`` at each scrape (replaces the services of an earlier start)."""
        if self._registry is not None and self._state is not None:
            self._registry.unregister(cast("Collector", self._state))
        self._state = _StateCollector(services)
        if self._registry is not None:
            self._registry.register(cast("Collector", self._state))

    async def exposition(self) -> bytes:
        """The text format, with the cluster's slot numbers read just before."""
        if self._state is not None:
            await self._state.refresh_cluster()
        self.flush()
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
