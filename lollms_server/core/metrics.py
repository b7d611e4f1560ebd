"""Prometheus metrics (the official prometheus_client), one registry per server.

Generations: requests, latency and time-to-first-token histograms, tokens, errors by kind, per surface and
binding. HTTP: requests and latency per route template. Gauges read at scrape time: queue depth, active
slots, loaded binding instances and loaded models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from lollms_server.core.services import Services

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _StateCollector(Collector):
    """Gauges computed from the live services when Prometheus scrapes."""

    def __init__(self, services: "Services") -> None:
        self.s = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self.s.resources.state()
        queue = GaugeMetricFamily("lollms_queue_depth", "Requests waiting for a compute slot.")
        queue.add_metric([], state.waiting)
        active = GaugeMetricFamily("lollms_active_slots", "Compute slots in use.")
        active.add_metric([], state.active)
        limit = GaugeMetricFamily("lollms_slot_limit", "Compute slots available (0 = unlimited).")
        limit.add_metric([], state.limit or 0)
        instances = GaugeMetricFamily("lollms_binding_instances", "Binding instances by state.", labels=["state"])
        loaded = sum(1 for r in self.s.bindings.instances.values() if r.binding)
        instances.add_metric(["loaded"], loaded)
        instances.add_metric(["failed"], len(self.s.bindings.instances) - loaded)
        models = GaugeMetricFamily("lollms_loaded_models", "Models held in memory per binding instance.", labels=["binding"])
        for name, rec in sorted(self.s.bindings.instances.items()):
            if rec.binding is not None:
                models.add_metric([name], len(rec.binding.loaded_models()))
        yield from (queue, active, limit, instances, models)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._state: _StateCollector | None = None
        r = self.registry
        self.generations = Counter("lollms_generations", "Generations by outcome.", ["surface", "binding", "status"], registry=r)
        self.latency = Histogram("lollms_generation_duration_seconds", "Generation duration.", ["surface", "binding"],
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("lollms_time_to_first_token_seconds", "Time to the first streamed token.",
                              ["surface", "binding"], buckets=_TTFT_BUCKETS, registry=r)
        self.tokens = Counter("lollms_tokens", "Tokens by kind (prompt, completion).", ["surface", "binding", "kind"], registry=r)
        self.errors = Counter("lollms_errors", "Failed generations and refused requests by kind.", ["surface", "binding", "kind"],
                              registry=r)
        self.http = Counter("lollms_http_requests", "HTTP requests by route template and status.", ["method", "route", "status"],
                            registry=r)
        self.http_latency = Histogram("lollms_http_request_duration_seconds", "Time to the response headers.", ["method", "route"],
                                      buckets=_LATENCY_BUCKETS, registry=r)

    def watch(self, services: "Services") -> None:
        """Read gauges from ``services`` at each scrape (replaces the services of an earlier start)."""
        if self._state is not None:
            self.registry.unregister(self._state)
        self._state = _StateCollector(services)
        self.registry.register(self._state)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
