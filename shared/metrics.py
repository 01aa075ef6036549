"""Prometheus metrics of both services, on `prometheus_client`, in one or several processes.

`Registry` is what the services use: ``.counter(name, help, labels)``,
``.gauge(...)``, ``.histogram(...)`` return metrics with ``.inc(**labels)``,
``.set(value, **labels)`` and ``.observe(value, **labels)`` (a label left out
is the empty string), and ``.render()`` is the text of ``/metrics``.

One process (``serve`` with one worker, tests): each `Registry` holds its own
collector registry, with the standard process metrics
(``process_resident_memory_bytes``, ``process_cpu_seconds_total``,
``process_open_fds``, ...) read from ``/proc`` at each scrape.

Several worker processes (``serve --workers N``): ``serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` to an empty folder before the workers start
(`prepare_multiprocess_dir`); prometheus_client then keeps every value in a
memory-mapped file per process there, and whichever worker answers a scrape
adds them up across processes: counters and histograms sum (values of
workers that died and were replaced included, so counters never go back),
gauges aggregate as each declares (``aggregate``). Process metrics cannot be
read for another process from inside one, so each worker samples its own
(every `PROCESS_SAMPLE_SECONDS` and at each scrape it answers) into gauges
labelled with its ``pid``; the values of workers that are gone are dropped
when a new worker starts.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Literal, get_args

import prometheus_client
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client import Counter as _Counter
from prometheus_client import Gauge as _Gauge
from prometheus_client import Histogram as _Histogram
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = [
    "CONTENT_TYPE",
    "MULTIPROC_ENV",
    "PROCESS_SAMPLE_SECONDS",
    "Counter",
    "Gauge",
    "Histogram",
    "Registry",
    "multiprocess_dir",
    "prepare_multiprocess_dir",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# prometheus_client's own switch (read when it is imported): set by `serve`
# for several workers, never by hand in the services' settings.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PROCESS_SAMPLE_SECONDS = 10.0
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# How a gauge's values of several workers combine: one series per worker
# (``all``, ``liveall``: a ``pid`` label), or one value for the service.
Aggregate = Literal["mostrecent", "max", "min", "sum", "all", "liveall", "livesum"]
AGGREGATES: tuple[Aggregate, ...] = get_args(Aggregate)

# Counters' ``*_created`` timestamps double the series for little use.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def multiprocess_dir() -> str | None:
    """The folder shared by the worker processes, None when running alone."""
    return os.environ.get(MULTIPROC_ENV) or None


@contextlib.contextmanager
def prepare_multiprocess_dir(workers: int) -> Iterator[str | None]:
    """For ``serve``: an empty metrics folder for `workers` > 1, exported before they start.

    An operator's ``PROMETHEUS_MULTIPROC_DIR`` is used (emptied of old values
    first); otherwise a private temporary folder is made and removed at exit.
    """
    if workers <= 1:
        yield None
        return
    given = multiprocess_dir()
    path = given or tempfile.mkdtemp(prefix="ecloud-metrics-")
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if given is None:
            shutil.rmtree(path, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


def _label_values(names: tuple[str, ...], labels: dict[str, str]) -> list[str]:
    return [str(labels.get(n, "")) for n in names]


class Counter:
    def __init__(self, metric: _Counter, labelnames: tuple[str, ...]) -> None:
        self._metric = metric
        self.labelnames = labelnames

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if self.labelnames:
            self._metric.labels(*_label_values(self.labelnames, labels)).inc(amount)
        else:
            self._metric.inc(amount)


class Gauge:
    def __init__(self, metric: _Gauge, labelnames: tuple[str, ...]) -> None:
        self._metric = metric
        self.labelnames = labelnames

    def _child(self, labels: dict[str, str]) -> _Gauge:
        if self.labelnames:
            return self._metric.labels(*_label_values(self.labelnames, labels))
        return self._metric

    def set(self, value: float, **labels: str) -> None:
        self._child(labels).set(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._child(labels).inc(amount)


class Histogram:
    def __init__(self, metric: _Histogram, labelnames: tuple[str, ...]) -> None:
        self._metric = metric
        self.labelnames = labelnames

    def observe(self, value: float, **labels: str) -> None:
        if self.labelnames:
            self._metric.labels(*_label_values(self.labelnames, labels)).observe(value)
        else:
            self._metric.observe(value)


class Registry:
    """The metrics of one service (see the module docstring for several processes)."""

    def __init__(self) -> None:
        self._dir = multiprocess_dir()
        # In multiprocess mode the values live in files and a scrape reads
        # them all; metrics are then registered nowhere.
        self._registry: CollectorRegistry | None = None
        self._process: ProcessCollector | None = None
        self._process_gauges: dict[str, _Gauge] = {}
        if self._dir is None:
            self._registry = CollectorRegistry()
            ProcessCollector(registry=self._registry)
        else:
            self._process = ProcessCollector(registry=None)
            _forget_dead_workers(self._dir)
            self.sample_process()
            _start_sampler(self)

    @property
    def multiprocess(self) -> bool:
        return self._dir is not None

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Counter:
        names = tuple(labelnames)
        return Counter(_Counter(name, help_text, names, registry=self._registry), names)

    def gauge(
        self,
        name: str,
        help_text: str,
        labelnames: Sequence[str] = (),
        aggregate: Aggregate = "mostrecent",
    ) -> Gauge:
        """A gauge; `aggregate` says how several workers' values combine (`AGGREGATES`)."""
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}")
        names = tuple(labelnames)
        metric = _Gauge(
            name, help_text, names, registry=self._registry, multiprocess_mode=aggregate
        )
        return Gauge(metric, names)

    def histogram(
        self,
        name: str,
        help_text: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        names = tuple(labelnames)
        metric = _Histogram(name, help_text, names, registry=self._registry, buckets=buckets)
        return Histogram(metric, names)

    def sample_process(self) -> None:
        """Copy this process's memory, CPU and file metrics into its pid-labelled gauges."""
        if self._process is None:
            return
        for family in self._process.collect():
            for sample in family.samples:
                gauge = self._process_gauges.get(sample.name)
                if gauge is None:
                    gauge = _Gauge(
                        sample.name,
                        family.documentation,
                        registry=None,
                        multiprocess_mode="liveall",
                    )
                    self._process_gauges[sample.name] = gauge
                gauge.set(sample.value)

    def render(self) -> str:
        if self._registry is not None:
            return generate_latest(self._registry).decode()
        self.sample_process()
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry).decode()


def _forget_dead_workers(path: str) -> None:
    """Drop the per-pid gauges of processes that no longer run (replaced workers)."""
    for name in os.listdir(path):
        match = _LIVE_FILE.fullmatch(name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, someone else's


def _start_sampler(registry: Registry) -> None:
    """Keep this worker's process gauges fresh even when other workers answer the scrapes."""

    def loop() -> None:
        while True:
            time.sleep(PROCESS_SAMPLE_SECONDS)
            registry.sample_process()

    threading.Thread(target=loop, name="process-metrics", daemon=True).start()
