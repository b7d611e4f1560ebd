"""Metrics counted before prometheus_client is loaded (start-up does not import it) give the same exposition as
metrics whose prometheus_client objects exist from the start: counts, histogram buckets and sums, NaN, zero
counts, other threads, refused label sets."""

from __future__ import annotations

import asyncio
import math
import re
import threading

import pytest

from lollms_server.core.metrics import Metrics


def _record(m: Metrics) -> None:
    m.inc(m.http, ("GET", "/api/v1/generate", "200"))
    m.inc(m.http, ("GET", "/api/v1/generate", "200"), 2)
    m.inc(m.tokens, ("api", "dummy", "prompt"), 0)  # counted once, by 0: listed all the same
    m.inc(m.generations, ("api", "dummy", "ok"))
    for value in (0.001, 0.005, 0.0051, 0.3, 2.0, 400.0, math.nan):
        m.observe(m.http_latency, ("GET", "/api/v1/generate"), value)
    m.observe(m.ttft, ("api", "dummy"), 0.02)
    worker = threading.Thread(target=lambda: (m.inc(m.errors, ("api", "dummy", "timeout")),
                                              m.observe(m.latency, ("api", "dummy"), 1.5)))
    worker.start()
    worker.join()
    m.inc(m.http, ("GET", "/api/v1/generate", "200"))


def _exposition(m: Metrics) -> str:
    text = asyncio.run(m.exposition()).decode()
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", text)  # creation times differ between two objects


def test_counts_made_before_prometheus_client_loads_give_the_same_exposition() -> None:
    eager = Metrics()
    assert eager.registry is not None  # its prometheus_client objects exist before the first count
    lazy = Metrics()
    _record(eager)
    _record(lazy)
    assert lazy._registry is not None  # the other thread's count needed prometheus_client: it loaded then
    first = _exposition(lazy)
    assert first == _exposition(eager)
    assert 'lollms_tokens_total{binding="dummy",kind="prompt",surface="api"} 0.0' in first
    # six of the seven observations counted; NaN falls in no bucket and makes the sum NaN, as prometheus_client does
    assert 'lollms_http_request_duration_seconds_count{method="GET",route="/api/v1/generate"} 6.0' in first
    _record(eager)
    _record(lazy)
    assert _exposition(lazy) == _exposition(eager)  # and after the first scrape


def test_nothing_is_loaded_until_a_scrape_or_a_use_that_needs_it() -> None:
    lazy = Metrics()
    lazy.inc(lazy.http, ("GET", "/health", "200"))
    lazy.observe(lazy.http_latency, ("GET", "/health"), 0.001)
    assert lazy._registry is None
    assert 'lollms_http_requests_total{method="GET",route="/health",status="200"} 1.0' in _exposition(lazy)


def test_a_refused_label_set_or_negative_count_fails_at_once_as_prometheus_client_says() -> None:
    lazy = Metrics()
    with pytest.raises(ValueError):
        lazy.inc(lazy.http, ("GET", "/x"))  # one label short
    other = Metrics()
    with pytest.raises(ValueError):
        other.inc(other.http, ("GET", "/x", "200"), -1)
    third = Metrics()
    with pytest.raises(ValueError):
        third.observe(third.http_latency, ("GET",), 0.1)
