"""slm.edge prompt queue worker: RabbitMQ in front of llama-server.

Consumes OpenAI chat-completions request bodies (JSON) from a durable queue,
sends each to one of the local llama-server replicas and publishes the answer
to the request's ``reply_to`` queue with the same ``correlation_id``.

Delivery guarantees (at-least-once):

* prefetch (basic.qos) is the servers' parallel slots plus one each (the role's default), so
  the broker never hands this worker more than the servers can run and one waiting request
  each, which starts the moment a slot frees;
* a request is acknowledged only after its answer (or its dead-letter copy) was
  published and confirmed by the broker (publisher confirms), so a crash or a
  ``kill -9`` at any moment loses nothing: the broker redelivers what was not
  acknowledged. A crash between the confirm and the ack answers a request twice;
  clients de-duplicate by correlation id;
* a failing request is republished with the header ``x-slm-attempts`` + 1 and
  goes to the dead-letter exchange, with the reason in ``x-slm-dead-reason``,
  once it has failed ``max_attempts`` times (at once for a request the server
  rejects as invalid, HTTP 4xx, or a body that is not a chat request);
* when no server answers ``/health`` the worker stops consuming (basic.cancel)
  and puts its requests back unharmed, without counting an attempt, until a
  server is healthy again;
* SIGTERM stops consuming, finishes the requests in flight, then closes.

Metrics: Prometheus text (prometheus_client) on ``http://<metrics_address>:<metrics_port>/metrics``
and one JSON log line per request on stdout (the journal).

Usage:
  slm_queue_worker.py --config /etc/slm-queue/worker.json            run
  slm_queue_worker.py --config /etc/slm-queue/worker.json --declare  declare the
      exchanges and queues, print {"changed": ..., "created": [...]}, exit
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import http.client
import json
import queue
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

try:
    import pika
except ImportError:  # the pure logic (and its unit tests) does not need it
    pika = None

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

ATTEMPTS_HEADER = "x-slm-attempts"
LAST_ERROR_HEADER = "x-slm-last-error"
DEAD_REASON_HEADER = "x-slm-dead-reason"
ORIGINAL_QUEUE_HEADER = "x-slm-original-queue"
SERVER_HEADER = "x-slm-server"

# Outcomes of one call to llama-server.
OK = "ok"
UNAVAILABLE = "unavailable"  # the server is down or loading: not the request's fault
RETRYABLE = "retryable"  # a server error or a timeout: try again, counting an attempt
PERMANENT = "permanent"  # the request itself is bad: retrying cannot help

# What to do with a delivery.
ANSWER = "answer"
RETRY = "retry"
DEAD = "dead"
REQUEUE = "requeue"

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
MAX_REASON = 300


class BadRequest(Exception):
    """A delivery that can never become a valid chat request."""


# --------------------------------------------------------------------------
# Pure logic (unit tested without a broker or a server)
# --------------------------------------------------------------------------


def attempts_from_headers(headers: dict[str, Any] | None) -> int:
    """Attempts already made for a delivery, from its x-slm-attempts header."""
    if not headers:
        return 0
    value = headers.get(ATTEMPTS_HEADER, 0)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        count = int(value)
    except (TypeError, ValueError):
        return 0
    return max(count, 0)


def classify_http(status: int | None, error: BaseException | None = None) -> str:
    """Map an HTTP status (or a transport error) from llama-server to an outcome."""
    if error is not None:
        if isinstance(error, TimeoutError):
            return RETRYABLE
        if isinstance(error, ConnectionError | http.client.RemoteDisconnected | urllib.error.URLError | OSError):
            return UNAVAILABLE
        return RETRYABLE
    if status is None:
        return UNAVAILABLE
    if 200 <= status < 300:
        return OK
    if status in (429, 502, 503, 504):
        return UNAVAILABLE
    if status == 408 or status >= 500:
        return RETRYABLE
    if 400 <= status < 500:
        return PERMANENT
    return RETRYABLE


@dataclass(frozen=True)
class Decision:
    action: str
    attempts: int
    reason: str = ""


def decide(outcome: str, attempts: int, max_attempts: int, reason: str = "") -> Decision:
    """What to do after a call: answer, retry (republish), dead-letter or requeue.

    ``attempts`` is the number of failed attempts before this one. An UNAVAILABLE
    outcome does not count: the request goes back to the queue as it was.
    """
    reason = reason[:MAX_REASON]
    if outcome == OK:
        return Decision(ANSWER, attempts)
    if outcome == UNAVAILABLE:
        return Decision(REQUEUE, attempts, reason)
    if outcome == PERMANENT:
        return Decision(DEAD, attempts + 1, f"rejected: {reason}" if reason else "rejected")
    made = attempts + 1
    if made >= max(max_attempts, 1):
        return Decision(DEAD, made, f"failed {made} times: {reason}" if reason else f"failed {made} times")
    return Decision(RETRY, made, reason)


def parse_request(body: bytes, reply_to: str | None) -> dict[str, Any]:
    """Validate a delivery and return the chat-completions payload to send."""
    if not reply_to:
        raise BadRequest("no reply_to property: nowhere to send the answer")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise BadRequest("body is not a JSON object")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("body has no 'messages' list (OpenAI chat-completions format)")
    # Answers travel as one message: no server-sent events through the queue.
    payload["stream"] = False
    return payload


def consume_action(consuming: bool, any_server_up: bool, stopping: bool) -> str:
    """Start, stop or keep consuming: "start", "stop" or "keep"."""
    want = any_server_up and not stopping
    if want and not consuming:
        return "start"
    if consuming and not want:
        return "stop"
    return "keep"


def error_reply(correlation_id: str | None, reason: str, attempts: int) -> dict[str, Any]:
    """The body sent to reply_to when a request is dead-lettered."""
    return {
        "object": "error",
        "error": {"message": reason, "type": "dead_lettered", "attempts": attempts},
        "correlation_id": correlation_id,
    }


class ServerPool:
    """llama-server base URLs, their health and their in-flight requests."""

    def __init__(self, servers: list[str]):
        if not servers:
            raise ValueError("at least one server is needed")
        self._lock = threading.Lock()
        self.servers = [s.rstrip("/") for s in servers]
        self.up = dict.fromkeys(self.servers, False)
        self.busy = dict.fromkeys(self.servers, 0)

    def pick(self) -> str | None:
        """The healthy server with the fewest requests in flight (first on ties)."""
        with self._lock:
            healthy = [s for s in self.servers if self.up[s]]
            if not healthy:
                return None
            best = min(healthy, key=lambda s: self.busy[s])
            self.busy[best] += 1
            return best

    def release(self, server: str) -> None:
        with self._lock:
            self.busy[server] = max(self.busy[server] - 1, 0)

    def mark(self, server: str, up: bool) -> bool:
        """Set a server's health; True when it changed."""
        with self._lock:
            changed = self.up[server] != up
            self.up[server] = up
            return changed

    def any_up(self) -> bool:
        with self._lock:
            return any(self.up.values())

    def down(self) -> list[str]:
        with self._lock:
            return [s for s in self.servers if not self.up[s]]


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1


class Metrics:
    """Counters and gauges, rendered in the Prometheus text format."""

    def __init__(self, queue: str):
        self._lock = threading.Lock()
        self.queue = queue
        self.answered = 0
        self.retried = 0
        self.requeued = 0
        self.redelivered = 0
        self.dead: dict[str, int] = {}
        self.unroutable_replies = 0
        self.in_flight = 0
        self.paused = 1
        self.connected = 0
        self.depth: int | None = None
        self.dead_depth: int | None = None
        self.servers_up: dict[str, bool] = {}
        self.latency = Histogram()

    def inc(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def set(self, name: str, value: Any) -> None:
        with self._lock:
            setattr(self, name, value)

    def dead_lettered(self, kind: str) -> None:
        with self._lock:
            self.dead[kind] = self.dead.get(kind, 0) + 1

    def observe(self, seconds: float) -> None:
        with self._lock:
            self.latency.observe(seconds)

    def collect(self):
        """The families of one scrape (prometheus_client's collector protocol), read under the lock."""
        with self._lock:
            depth = GaugeMetricFamily("slm_queue_depth", "Requests waiting in the queue (last poll).", labels=["queue"])
            if self.depth is not None:
                depth.add_metric([self.queue], self.depth)
            dead_depth = GaugeMetricFamily(
                "slm_queue_dead_depth", "Requests in the dead-letter queue (last poll).", labels=["queue"]
            )
            if self.dead_depth is not None:
                dead_depth.add_metric([self.queue], self.dead_depth)
            up = GaugeMetricFamily("slm_queue_server_up", "1 when the llama-server answers /health.", labels=["server"])
            for server, is_up in sorted(self.servers_up.items()):
                up.add_metric([server], int(is_up))
            dead = CounterMetricFamily(
                "slm_queue_dead_lettered", "Requests sent to the dead-letter queue, by kind of reason.", labels=["kind"]
            )
            for kind, n in sorted(self.dead.items()):
                dead.add_metric([kind], n)
            latency = HistogramMetricFamily("slm_queue_request_seconds", "Time from delivery to acknowledged answer.")
            buckets = [(floatToGoString(b), n) for b, n in zip(self.latency.buckets, self.latency.counts, strict=True)]
            latency.add_metric([], [*buckets, ("+Inf", self.latency.count)], sum_value=self.latency.total)
            families = [
                depth,
                dead_depth,
                GaugeMetricFamily("slm_queue_in_flight", "Requests being answered now.", value=self.in_flight),
                GaugeMetricFamily(
                    "slm_queue_paused",
                    "1 while consumption is paused (no healthy server, or stopping).",
                    value=self.paused,
                ),
                GaugeMetricFamily(
                    "slm_queue_connected",
                    "1 while the worker holds its connection to the broker (topology declared).",
                    value=self.connected,
                ),
                up,
                CounterMetricFamily("slm_queue_answered", "Requests answered and acknowledged.", value=self.answered),
                CounterMetricFamily(
                    "slm_queue_retried", "Failed attempts republished for another try.", value=self.retried
                ),
                CounterMetricFamily(
                    "slm_queue_requeued",
                    "Requests put back unharmed because no server could take them.",
                    value=self.requeued,
                ),
                CounterMetricFamily(
                    "slm_queue_redelivered",
                    "Deliveries flagged redelivered (a worker died, or requeued).",
                    value=self.redelivered,
                ),
                dead,
                CounterMetricFamily(
                    "slm_queue_unroutable_replies",
                    "Answers whose reply_to queue no longer existed.",
                    value=self.unroutable_replies,
                ),
                CounterMetricFamily(
                    "slm_queue_server_connections_opened",
                    "Connections opened to llama-server (kept alive between requests unless keepalive is off).",
                    value=SERVER_CONNECTIONS_OPENED.value,
                ),
                CounterMetricFamily(
                    "slm_queue_log_lines_dropped",
                    "JSON log lines dropped because the journal fell behind.",
                    value=LOG.dropped,
                ),
                latency,
            ]
        yield from families

    def render(self) -> bytes:
        """The Prometheus text exposition of every family (prometheus_client's generate_latest)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return generate_latest(registry)


def dead_kind(reason: str) -> str:
    """A short, bounded label for the dead-letter counter."""
    if reason.startswith("rejected"):
        return "rejected"
    if reason.startswith("failed"):
        return "max_attempts"
    return "invalid"


def load_config(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        cfg = json.load(fh)
    defaults = {
        "queue": "slm.chat",
        "dead_letter_exchange": "slm.chat.dlx",
        "dead_letter_queue": "slm.chat.dead",
        "queue_type": "classic",
        "servers": ["http://127.0.0.1:8080"],
        "api_key_file": "",
        "prefetch": 4,
        "keepalive": True,
        "max_attempts": 3,
        "request_timeout": 300,
        "health_interval": 2.0,
        "depth_interval": 5.0,
        "metrics_address": "127.0.0.1",
        "metrics_port": 9108,
    }
    for key, value in defaults.items():
        cfg.setdefault(key, value)
    amqp = cfg.setdefault("amqp", {})
    for key, value in {"host": "127.0.0.1", "port": 5672, "vhost": "/", "user": "guest", "password": ""}.items():
        amqp.setdefault(key, value)
    if int(cfg["prefetch"]) < 1:
        raise ValueError("prefetch must be >= 1")
    if int(cfg["max_attempts"]) < 1:
        raise ValueError("max_attempts must be >= 1")
    return cfg


# --------------------------------------------------------------------------
# HTTP to llama-server
# --------------------------------------------------------------------------


@dataclass
class CallResult:
    outcome: str
    status: int | None
    body: bytes
    reason: str
    seconds: float


def server_context(ca_file: str = "") -> ssl.SSLContext:
    """TLS context for https llama-servers: verified against ca_file, else the system trust store."""
    return ssl.create_default_context(cafile=ca_file or None)


# One kept-alive connection per HTTP thread and server: a request then costs llama-server and the
# worker no TCP handshake (and no TLS one for https servers), and no new handler thread in
# llama-server's HTTP pool.
_CONNECTIONS = threading.local()


class _Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


SERVER_CONNECTIONS_OPENED = _Counter()


def _connection(server: str, timeout: float, context: ssl.SSLContext | None) -> tuple[http.client.HTTPConnection, bool]:
    """This thread's connection to server, and whether it has served a request before."""
    pool = getattr(_CONNECTIONS, "pool", None)
    if pool is None:
        pool = _CONNECTIONS.pool = {}
    conn = pool.get(server)
    if conn is not None and conn.sock is not None:
        conn.sock.settimeout(timeout)
        return conn, True
    parts = urllib.parse.urlsplit(server)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    pool[server] = conn
    SERVER_CONNECTIONS_OPENED.add()
    return conn, False


def _drop(server: str) -> None:
    conn = getattr(_CONNECTIONS, "pool", {}).pop(server, None)
    if conn is not None:
        conn.close()


def _post(
    server: str,
    data: bytes,
    headers: dict[str, str],
    timeout: float,
    context: ssl.SSLContext | None,
    *,
    keepalive: bool = True,
) -> tuple[int, bytes]:
    """POST to server's chat completions over this thread's kept-alive connection.

    A connection llama-server closed while idle fails before it sends anything back: that one
    attempt is made again on a new connection (the request never reached the server).
    keepalive False: a new connection for each request, closed after it.
    """
    path = urllib.parse.urlsplit(server).path.rstrip("/") + "/v1/chat/completions"
    if not keepalive:
        headers = {**headers, "Connection": "close"}
    while True:
        conn, reused = _connection(server, timeout, context)
        try:
            conn.request("POST", path, body=data, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            _drop(server)
            if reused:
                continue
            raise
        except BaseException:
            _drop(server)
            raise
        if resp.will_close:
            _drop(server)
        return resp.status, body


def call_server(
    server: str,
    payload: dict[str, Any],
    timeout: float,
    api_key: str = "",
    context: ssl.SSLContext | None = None,
    *,
    keepalive: bool = True,
) -> CallResult:
    data = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    start = time.monotonic()
    try:
        status, body = _post(server, data, headers, timeout, context, keepalive=keepalive)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        return CallResult(classify_http(None, exc), None, b"", reason, time.monotonic() - start)
    elapsed = time.monotonic() - start
    if status >= 400:
        return CallResult(classify_http(status), status, body, f"HTTP {status}: {_excerpt(body)}", elapsed)
    try:
        answer = json.loads(body)
        if not isinstance(answer, dict) or not answer.get("choices"):
            raise ValueError("no choices")
    except ValueError:
        reason = f"HTTP {status} without a chat completion: {_excerpt(body)}"
        return CallResult(RETRYABLE, status, body, reason, elapsed)
    return CallResult(OK, status, body, "", elapsed)


def check_health(server: str, timeout: float = 2.0, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(f"{server}/health", timeout=timeout, context=context) as resp:  # noqa: S310
            return resp.status == 200
    except Exception:
        return False


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    try:
        err = json.loads(text).get("error")
        if isinstance(err, dict) and err.get("message"):
            text = str(err["message"])
    except (ValueError, AttributeError):
        pass
    return text[:limit]


class _LogWriter:
    """JSON log lines written by a thread of their own.

    A slow journald (a busy host) would otherwise block the thread that acknowledges
    requests; lines beyond the buffer are dropped and counted instead.
    """

    def __init__(self, size: int = 10000, stream=None):
        self.lines: queue.Queue[str] = queue.Queue(maxsize=size)
        self.dropped = 0
        self.stream = stream
        self.thread: threading.Thread | None = None

    def write(self, line: str) -> None:
        if self.thread is None:
            print(line, file=self.stream or sys.stdout, flush=True)
            return
        try:
            self.lines.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="log", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            line = self.lines.get()
            print(line, file=self.stream or sys.stdout, flush=True)

    def flush(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.lines.empty() and time.monotonic() < deadline:
            time.sleep(0.01)


LOG = _LogWriter()


def log(event: str, **fields: Any) -> None:
    LOG.write(json.dumps({"ts": round(time.time(), 3), "event": event, **fields}, default=str))


# --------------------------------------------------------------------------
# AMQP (pika)
# --------------------------------------------------------------------------


def connection_parameters(cfg: dict[str, Any]):
    amqp = cfg["amqp"]
    ssl_options = None
    if amqp.get("tls"):
        context = ssl.create_default_context(cafile=amqp.get("ca_file") or None)
        ssl_options = pika.SSLOptions(context, amqp["host"])
    return pika.ConnectionParameters(
        host=amqp["host"],
        port=int(amqp["port"]),
        virtual_host=amqp["vhost"],
        credentials=pika.PlainCredentials(amqp["user"], amqp["password"]),
        heartbeat=int(amqp.get("heartbeat", 60)),
        blocked_connection_timeout=300,
        ssl_options=ssl_options,
        client_properties={"connection_name": f"slm-queue-worker@{socket.gethostname()}"},
    )


def declare_topology(channel, cfg: dict[str, Any]) -> list[str]:
    """Declare the dead-letter exchange and queue and the request queue; return what was created."""
    created = []

    def exists(kind: str, name: str) -> bool:
        ch = channel.connection.channel()
        try:
            if kind == "exchange":
                ch.exchange_declare(name, passive=True)
            else:
                ch.queue_declare(name, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return False
            raise
        with contextlib.suppress(Exception):
            ch.close()
        return True

    args = {"x-queue-type": cfg["queue_type"]}
    if not exists("exchange", cfg["dead_letter_exchange"]):
        created.append("exchange " + cfg["dead_letter_exchange"])
    channel.exchange_declare(cfg["dead_letter_exchange"], exchange_type="fanout", durable=True)
    if not exists("queue", cfg["dead_letter_queue"]):
        created.append("queue " + cfg["dead_letter_queue"])
    channel.queue_declare(cfg["dead_letter_queue"], durable=True, arguments=args)
    channel.queue_bind(cfg["dead_letter_queue"], cfg["dead_letter_exchange"])
    if not exists("queue", cfg["queue"]):
        created.append("queue " + cfg["queue"])
    # The dead-letter exchange of the request queue is set by a policy (changeable later).
    channel.queue_declare(cfg["queue"], durable=True, arguments=args)
    return created


@dataclass
class Job:
    generation: int
    delivery_tag: int
    properties: Any
    body: bytes
    received: float
    attempts: int
    payload: dict[str, Any] | None = None
    server: str | None = None


class Worker:
    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.pool = ServerPool(cfg["servers"])
        self.metrics = Metrics(cfg["queue"])
        self.metrics.servers_up = dict.fromkeys(self.pool.servers, False)
        self.api_key = ""
        if cfg.get("api_key_file"):
            with open(cfg["api_key_file"], encoding="utf-8") as fh:
                self.api_key = fh.read().strip()
        # https servers are verified against the CA file of slm.edge.llama_server (copied by the role).
        self.server_ssl = server_context(cfg.get("server_ca_file") or "")
        self.stopping = threading.Event()
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=int(cfg["prefetch"]))
        self.generation = 0
        self.in_flight = 0
        self.connection = None
        self.channel = None
        self.consumer_tag = None

    # ---- health --------------------------------------------------------
    def health_loop(self) -> None:
        while not self.stopping.is_set():
            for server in self.pool.down():
                if check_health(server, context=self.server_ssl):
                    self._set_health(server, True)
            self.stopping.wait(float(self.cfg["health_interval"]))

    def _set_health(self, server: str, up: bool) -> None:
        if self.pool.mark(server, up):
            log("server_up" if up else "server_down", server=server)
        with self.metrics._lock:
            self.metrics.servers_up[server] = up

    # ---- metrics -------------------------------------------------------
    def serve_metrics(self) -> None:
        port = int(self.cfg["metrics_port"])
        if port == 0:
            return
        metrics = self.metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                data = metrics.render()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                return

        server = ThreadingHTTPServer((self.cfg["metrics_address"], port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()

    # ---- consuming -----------------------------------------------------
    def _update_consumer(self) -> None:
        action = consume_action(self.consumer_tag is not None, self.pool.any_up(), self.stopping.is_set())
        if action == "start":
            self.consumer_tag = self.channel.basic_consume(self.cfg["queue"], self.on_message)
            self.metrics.set("paused", 0)
            log("consuming", queue=self.cfg["queue"], prefetch=int(self.cfg["prefetch"]))
        elif action == "stop":
            self.channel.basic_cancel(self.consumer_tag)
            self.consumer_tag = None
            self.metrics.set("paused", 1)
            log("paused", reason="stopping" if self.stopping.is_set() else "no healthy llama-server")

    def on_message(self, channel, method, properties, body) -> None:
        job = Job(
            generation=self.generation,
            delivery_tag=method.delivery_tag,
            properties=properties,
            body=body,
            received=time.monotonic(),
            attempts=attempts_from_headers(properties.headers),
        )
        if method.redelivered:
            self.metrics.inc("redelivered")
        try:
            job.payload = parse_request(body, properties.reply_to)
        except BadRequest as exc:
            self._dead_letter(job, Decision(DEAD, job.attempts + 1, f"invalid: {exc}"))
            return
        job.server = self.pool.pick()
        if job.server is None:
            channel.basic_nack(job.delivery_tag, requeue=True)
            self.metrics.inc("requeued")
            return
        self.in_flight += 1
        self.metrics.set("in_flight", self.in_flight)
        future = self.executor.submit(
            call_server,
            job.server,
            job.payload,
            float(self.cfg["request_timeout"]),
            self.api_key,
            self.server_ssl,
            keepalive=bool(self.cfg["keepalive"]),
        )
        future.add_done_callback(functools.partial(self._done, self.connection, job))

    def _done(self, connection, job: Job, future: concurrent.futures.Future) -> None:
        """In the HTTP thread: free the server slot, hand the result to the connection's thread."""
        self.pool.release(job.server)
        try:
            connection.add_callback_threadsafe(functools.partial(self._finish, job, future))
        except Exception:
            return

    def _finish(self, job: Job, future: concurrent.futures.Future) -> None:
        if job.generation != self.generation:
            return  # delivered on a connection that is gone: redelivered already
        self.in_flight -= 1
        self.metrics.set("in_flight", self.in_flight)
        try:
            result: CallResult = future.result()
        except Exception as exc:
            result = CallResult(RETRYABLE, None, b"", f"{type(exc).__name__}: {exc}", 0.0)
        decision = decide(result.outcome, job.attempts, int(self.cfg["max_attempts"]), result.reason)
        cid = job.properties.correlation_id
        if decision.action == ANSWER:
            self._reply(job, result.body)
            self.channel.basic_ack(job.delivery_tag)
            latency = time.monotonic() - job.received
            self.metrics.inc("answered")
            self.metrics.observe(latency)
            log(
                "answered",
                correlation_id=cid,
                server=job.server,
                attempt=job.attempts + 1,
                server_s=round(result.seconds, 4),
                latency_s=round(latency, 4),
            )
        elif decision.action == REQUEUE:
            self._set_health(job.server, False)
            self.channel.basic_nack(job.delivery_tag, requeue=True)
            self.metrics.inc("requeued")
            log("requeued", correlation_id=cid, server=job.server, reason=decision.reason)
        elif decision.action == RETRY:
            headers = dict(job.properties.headers or {})
            headers[ATTEMPTS_HEADER] = decision.attempts
            headers[LAST_ERROR_HEADER] = decision.reason
            self._publish("", self.cfg["queue"], job, headers)
            self.channel.basic_ack(job.delivery_tag)
            self.metrics.inc("retried")
            log("retry", correlation_id=cid, server=job.server, attempts=decision.attempts, reason=decision.reason)
        else:
            self._dead_letter(job, decision)
        self._update_consumer()

    def _dead_letter(self, job: Job, decision: Decision) -> None:
        headers = dict(job.properties.headers or {})
        headers[ATTEMPTS_HEADER] = decision.attempts
        headers[DEAD_REASON_HEADER] = decision.reason
        headers[ORIGINAL_QUEUE_HEADER] = self.cfg["queue"]
        if job.server:
            headers[SERVER_HEADER] = job.server
        self._publish(self.cfg["dead_letter_exchange"], self.cfg["dead_letter_queue"], job, headers)
        cid = job.properties.correlation_id
        if job.properties.reply_to:
            self._reply(job, json.dumps(error_reply(cid, decision.reason, decision.attempts)).encode())
        self.channel.basic_ack(job.delivery_tag)
        self.metrics.dead_lettered(dead_kind(decision.reason))
        log("dead_lettered", correlation_id=cid, server=job.server, attempts=decision.attempts, reason=decision.reason)

    def _reply(self, job: Job, body: bytes) -> None:
        props = pika.BasicProperties(
            content_type="application/json",
            correlation_id=job.properties.correlation_id,
            delivery_mode=2,
            timestamp=int(time.time()),
        )
        try:
            self.channel.basic_publish("", job.properties.reply_to, body, props, mandatory=True)
        except pika.exceptions.UnroutableError:
            # The client is gone (its reply queue with it): nobody can read this answer.
            self.metrics.inc("unroutable_replies")
            log("reply_unroutable", correlation_id=job.properties.correlation_id, reply_to=job.properties.reply_to)

    def _publish(self, exchange: str, routing_key: str, job: Job, headers: dict[str, Any]) -> None:
        """Publish a copy of the request (persistent, mandatory, confirmed)."""
        properties = job.properties
        props = pika.BasicProperties(
            content_type=properties.content_type or "application/json",
            correlation_id=properties.correlation_id,
            reply_to=properties.reply_to,
            message_id=properties.message_id,
            timestamp=properties.timestamp,
            delivery_mode=2,
            headers=headers,
        )
        self.channel.basic_publish(exchange, routing_key, job.body, props, mandatory=True)

    def _poll_depth(self) -> None:
        try:
            main = self.channel.queue_declare(self.cfg["queue"], passive=True)
            dead = self.channel.queue_declare(self.cfg["dead_letter_queue"], passive=True)
        except Exception as exc:
            log("depth_error", error=str(exc))
            return
        self.metrics.set("depth", main.method.message_count)
        self.metrics.set("dead_depth", dead.method.message_count)

    # ---- lifecycle -----------------------------------------------------
    def run_connection(self) -> None:
        self.generation += 1
        self.in_flight = 0
        self.consumer_tag = None
        self.metrics.set("in_flight", 0)
        self.metrics.set("paused", 1)
        self.metrics.set("connected", 0)
        self.connection = pika.BlockingConnection(connection_parameters(self.cfg))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        declare_topology(self.channel, self.cfg)
        self.channel.basic_qos(prefetch_count=int(self.cfg["prefetch"]))
        self.metrics.set("connected", 1)
        log("connected", host=self.cfg["amqp"]["host"], port=self.cfg["amqp"]["port"], vhost=self.cfg["amqp"]["vhost"])
        next_depth = 0.0
        while not self.stopping.is_set():
            self._update_consumer()
            self.connection.process_data_events(time_limit=0.5)
            if time.monotonic() >= next_depth:
                self._poll_depth()
                next_depth = time.monotonic() + float(self.cfg["depth_interval"])
        # Graceful stop: no new deliveries, finish what is in flight, then close.
        log("stopping", in_flight=self.in_flight)
        self._update_consumer()
        deadline = time.monotonic() + float(self.cfg["request_timeout"]) + 5
        log("draining", in_flight=self.in_flight)
        while self.in_flight > 0 and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=0.5)
        log("stopped", in_flight_left=self.in_flight)
        with contextlib.suppress(Exception):
            self.connection.close()
        self.metrics.set("connected", 0)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        LOG.start()
        self.serve_metrics()
        threading.Thread(target=self.health_loop, name="health", daemon=True).start()
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                self.run_connection()
                backoff = 1.0
            except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError) as exc:
                self.metrics.set("connected", 0)
                log("auth_failed", error=str(exc), user=self.cfg["amqp"]["user"], vhost=self.cfg["amqp"]["vhost"])
                LOG.flush()
                return 3
            except (pika.exceptions.AMQPError, OSError) as exc:
                # Whatever was in flight was not acknowledged: the broker redelivers it.
                self.metrics.set("connected", 0)
                log("connection_lost", error=repr(exc), retry_in_s=backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        self.executor.shutdown(wait=False, cancel_futures=True)
        LOG.flush()
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--config", required=True, help="worker configuration (JSON)")
    parser.add_argument("--declare", action="store_true", help="declare exchanges and queues, print JSON, exit")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    if args.declare:
        try:
            connection = pika.BlockingConnection(connection_parameters(cfg))
        except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError) as exc:
            print(json.dumps({"failed": True, "msg": f"authentication refused for {cfg['amqp']['user']}: {exc}"}))
            return 3
        created = declare_topology(connection.channel(), cfg)
        connection.close()
        print(json.dumps({"changed": bool(created), "created": created}))
        return 0
    return Worker(cfg).run()


if __name__ == "__main__":
    sys.exit(main())
