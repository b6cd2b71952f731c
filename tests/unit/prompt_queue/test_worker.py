"""Pure logic of the prompt queue worker and client, without a broker or a server."""

import contextlib
import http.client
import importlib.util
import io
import json
import socket
import sys
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[3] / "roles" / "prompt_queue" / "files"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, FILES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


w = _load("slm_queue_worker")
c = _load("slm_queue_client")


# ---- attempt counting -------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, 0),
        ({}, 0),
        ({"x-slm-attempts": 2}, 2),
        ({"x-slm-attempts": b"1"}, 1),
        ({"x-slm-attempts": "4"}, 4),
        ({"x-slm-attempts": "junk"}, 0),
        ({"x-slm-attempts": -3}, 0),
        ({"x-slm-attempts": None}, 0),
        ({"other": 7}, 0),
    ],
)
def test_attempts_from_headers(headers, expected):
    assert w.attempts_from_headers(headers) == expected


# ---- classification of server answers ----------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, w.OK),
        (400, w.PERMANENT),
        (404, w.PERMANENT),
        (413, w.PERMANENT),
        (408, w.RETRYABLE),
        (500, w.RETRYABLE),
        (501, w.RETRYABLE),
        (429, w.UNAVAILABLE),
        (502, w.UNAVAILABLE),
        (503, w.UNAVAILABLE),
        (504, w.UNAVAILABLE),
        (None, w.UNAVAILABLE),
    ],
)
def test_classify_status(status, outcome):
    assert w.classify_http(status) == outcome


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (ConnectionRefusedError(111, "refused"), w.UNAVAILABLE),
        (urllib.error.URLError(ConnectionRefusedError(111, "refused")), w.UNAVAILABLE),
        (http.client.RemoteDisconnected("closed"), w.UNAVAILABLE),
        (ConnectionResetError(104, "reset"), w.UNAVAILABLE),
        (TimeoutError("timed out"), w.RETRYABLE),
        (ValueError("odd"), w.RETRYABLE),
    ],
)
def test_classify_errors(error, outcome):
    assert w.classify_http(None, error) == outcome


# ---- dead-letter decision ---------------------------------------------------


def test_success_is_answered_without_counting():
    d = w.decide(w.OK, 1, 3)
    assert d.action == w.ANSWER
    assert d.attempts == 1


def test_server_error_retries_then_dead_letters_on_the_last_attempt():
    first = w.decide(w.RETRYABLE, 0, 3, "HTTP 500: boom")
    second = w.decide(w.RETRYABLE, first.attempts, 3, "HTTP 500: boom")
    third = w.decide(w.RETRYABLE, second.attempts, 3, "HTTP 500: boom")
    assert (first.action, first.attempts) == (w.RETRY, 1)
    assert (second.action, second.attempts) == (w.RETRY, 2)
    assert (third.action, third.attempts) == (w.DEAD, 3)
    assert third.reason == "failed 3 times: HTTP 500: boom"


def test_one_attempt_allowed_dead_letters_at_once():
    assert w.decide(w.RETRYABLE, 0, 1).action == w.DEAD
    # A nonsensical 0 still allows one attempt.
    assert w.decide(w.RETRYABLE, 0, 0).action == w.DEAD


def test_a_request_the_server_rejects_is_dead_lettered_at_once():
    d = w.decide(w.PERMANENT, 0, 3, "HTTP 400: invalid messages")
    assert d.action == w.DEAD
    assert d.attempts == 1
    assert d.reason == "rejected: HTTP 400: invalid messages"
    assert w.dead_kind(d.reason) == "rejected"


def test_unavailable_server_requeues_without_counting_an_attempt():
    d = w.decide(w.UNAVAILABLE, 2, 3, "ConnectionRefusedError")
    assert d.action == w.REQUEUE
    assert d.attempts == 2


def test_reason_is_bounded():
    d = w.decide(w.PERMANENT, 0, 3, "x" * 5000)
    assert len(d.reason) <= w.MAX_REASON + len("rejected: ")


def test_dead_kinds():
    assert w.dead_kind("failed 3 times: timeout") == "max_attempts"
    assert w.dead_kind("invalid: body is not JSON") == "invalid"


# ---- request validation -----------------------------------------------------


def test_parse_request_forces_non_streaming():
    body = json.dumps({"messages": [{"role": "user", "content": "Hello"}], "stream": True}).encode()
    assert w.parse_request(body, "amq.gen-1")["stream"] is False


@pytest.mark.parametrize(
    ("body", "reply_to", "message"),
    [
        (b'{"messages": [{"role": "user", "content": "hi"}]}', None, "no reply_to"),
        (b"not json", "q", "not JSON"),
        (b"\xff\xfe", "q", "not JSON"),
        (b"[1, 2]", "q", "not a JSON object"),
        (b'{"prompt": "hi"}', "q", "no 'messages'"),
        (b'{"messages": []}', "q", "no 'messages'"),
    ],
)
def test_parse_request_refuses(body, reply_to, message):
    with pytest.raises(w.BadRequest, match=message):
        w.parse_request(body, reply_to)


def test_error_reply_names_the_reason():
    body = w.error_reply("cid-1", "rejected: HTTP 400", 1)
    assert body["error"]["type"] == "dead_lettered"
    assert c.answer_text(json.dumps(body).encode()) == (None, "rejected: HTTP 400")


# ---- pause / resume ---------------------------------------------------------


@pytest.mark.parametrize(
    ("consuming", "any_up", "stopping", "action"),
    [
        (False, True, False, "start"),
        (True, True, False, "keep"),
        (True, False, False, "stop"),
        (False, False, False, "keep"),
        (True, True, True, "stop"),
        (False, True, True, "keep"),
    ],
)
def test_consume_action(consuming, any_up, stopping, action):
    assert w.consume_action(consuming, any_up, stopping) == action


def test_server_pool_starts_down_and_balances_in_flight():
    pool = w.ServerPool(["http://a:1/", "http://b:2"])
    assert pool.servers == ["http://a:1", "http://b:2"]
    assert pool.pick() is None
    assert not pool.any_up()
    assert pool.mark("http://a:1", True) is True
    assert pool.mark("http://a:1", True) is False
    pool.mark("http://b:2", True)
    picks = [pool.pick() for _i in range(4)]
    assert sorted(picks) == ["http://a:1", "http://a:1", "http://b:2", "http://b:2"]
    pool.release("http://a:1")
    assert pool.pick() == "http://a:1"


def test_server_pool_pauses_when_every_server_is_down():
    pool = w.ServerPool(["http://a:1", "http://b:2"])
    pool.mark("http://a:1", True)
    pool.mark("http://b:2", True)
    pool.mark("http://a:1", False)
    assert pool.down() == ["http://a:1"]
    assert pool.pick() == "http://b:2"
    pool.mark("http://b:2", False)
    assert not pool.any_up()
    assert w.consume_action(True, pool.any_up(), False) == "stop"
    pool.mark("http://a:1", True)
    assert w.consume_action(False, pool.any_up(), False) == "start"


def test_server_pool_needs_a_server():
    with pytest.raises(ValueError, match="at least one"):
        w.ServerPool([])


def test_release_never_goes_negative():
    pool = w.ServerPool(["http://a:1"])
    pool.release("http://a:1")
    assert pool.busy["http://a:1"] == 0


# ---- metrics ------------------------------------------------------------------


def _samples(m) -> dict[tuple[str, tuple], float]:
    """The exposition read back by prometheus_client's own parser: {(name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    text = m.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_render_prometheus_text():
    m = w.Metrics("slm.chat")
    m.servers_up = {"http://127.0.0.1:8080": True}
    m.set("depth", 7)
    m.set("dead_depth", 1)
    m.set("in_flight", 2)
    m.set("paused", 0)
    m.set("connected", 1)
    m.inc("answered", 3)
    m.inc("retried")
    m.dead_lettered("rejected")
    for seconds in (0.04, 0.3, 400.0):
        m.observe(seconds)
    got = _samples(m)
    assert got[("slm_queue_depth", (("queue", "slm.chat"),))] == 7
    assert got[("slm_queue_dead_depth", (("queue", "slm.chat"),))] == 1
    assert got[("slm_queue_in_flight", ())] == 2
    assert got[("slm_queue_paused", ())] == 0
    assert got[("slm_queue_connected", ())] == 1
    assert got[("slm_queue_answered_total", ())] == 3
    assert got[("slm_queue_retried_total", ())] == 1
    assert got[("slm_queue_dead_lettered_total", (("kind", "rejected"),))] == 1
    assert got[("slm_queue_server_up", (("server", "http://127.0.0.1:8080"),))] == 1
    assert got[("slm_queue_request_seconds_bucket", (("le", "0.05"),))] == 1
    assert got[("slm_queue_request_seconds_bucket", (("le", "0.5"),))] == 2
    assert got[("slm_queue_request_seconds_bucket", (("le", "300.0"),))] == 2
    assert got[("slm_queue_request_seconds_bucket", (("le", "+Inf"),))] == 3
    assert got[("slm_queue_request_seconds_count", ())] == 3
    assert abs(got[("slm_queue_request_seconds_sum", ())] - 400.34) < 1e-9
    # No _created series: a counter's value is all a scrape needs.
    assert not [k for k in got if k[0].endswith("_created")]


def test_metrics_without_a_depth_poll_omit_the_gauge_sample():
    m = w.Metrics("q")
    got = _samples(m)
    assert not [k for k in got if k[0] == "slm_queue_depth"]
    assert got[("slm_queue_paused", ())] == 1
    # A worker that has not reached the broker yet says so: the role's restart gate waits for 1.
    assert got[("slm_queue_connected", ())] == 0


def test_the_role_gate_patterns_match_the_exposition():
    """worker_gate.yml and worker.yml read /metrics with these patterns (prometheus_client writes 1.0)."""
    import re  # noqa: PLC0415

    m = w.Metrics("q")
    m.set("connected", 1)
    m.set("paused", 0)
    text = m.render().decode()
    assert re.search(r"(?m)^slm_queue_connected 1(\.0)?$", text)
    assert re.search(r"(?m)^slm_queue_paused 0(\.0)?$", text)
    gate = (FILES.parent / "tasks/worker_gate.yml").read_text()
    assert r"search('(?m)^slm_queue_connected 1(\.0)?$')" in gate


def test_metrics_labels_are_escaped():
    m = w.Metrics('we"ird\\q')
    m.set("depth", 0)
    assert 'queue="we\\"ird\\\\q"' in m.render().decode()
    assert _samples(m)[("slm_queue_depth", (("queue", 'we"ird\\q'),))] == 0


# ---- configuration ------------------------------------------------------------


def test_load_config_fills_defaults(tmp_path):
    path = tmp_path / "worker.json"
    path.write_text(json.dumps({"amqp": {"port": 5673, "password": "s"}, "servers": ["http://127.0.0.1:18180"]}))
    cfg = w.load_config(str(path))
    assert cfg["queue"] == "slm.chat"
    assert cfg["dead_letter_queue"] == "slm.chat.dead"
    assert cfg["amqp"]["port"] == 5673
    assert cfg["amqp"]["host"] == "127.0.0.1"
    assert cfg["max_attempts"] == 3


@pytest.mark.parametrize("bad", [{"prefetch": 0}, {"max_attempts": 0}])
def test_load_config_refuses_bad_limits(tmp_path, bad):
    path = tmp_path / "worker.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=next(iter(bad))):
        w.load_config(str(path))


# ---- HTTP to a fake llama-server --------------------------------------------------


class _Fake(BaseHTTPRequestHandler):
    status = 200
    body = b""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send()

    def do_GET(self):
        self._send()

    def _send(self):
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args):
        return


@contextlib.contextmanager
def _serving(handler, **attributes):
    """A local HTTP server with handler, these attributes set on it, shut down afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    for name, value in attributes.items():
        setattr(server, name, value)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_server():
    with _serving(_Fake, status=200, body=b"{}") as server:
        yield server


def _url(server):
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_call_server_ok(fake_server):
    fake_server.body = json.dumps({"choices": [{"message": {"content": "hi"}}]}).encode()
    result = w.call_server(_url(fake_server), {"messages": []}, 5)
    assert result.outcome == w.OK
    assert result.status == 200


def test_call_server_400_is_permanent_with_the_server_message(fake_server):
    fake_server.status = 400
    fake_server.body = json.dumps({"error": {"code": 400, "message": "messages must be an array"}}).encode()
    result = w.call_server(_url(fake_server), {"messages": "x"}, 5)
    assert result.outcome == w.PERMANENT
    assert result.reason == "HTTP 400: messages must be an array"


def test_call_server_503_is_unavailable(fake_server):
    fake_server.status = 503
    fake_server.body = b'{"error": {"message": "Loading model"}}'
    assert w.call_server(_url(fake_server), {}, 5).outcome == w.UNAVAILABLE
    assert w.check_health(_url(fake_server)) is False


def test_call_server_200_without_choices_is_retryable(fake_server):
    fake_server.body = b"<html>proxy page</html>"
    assert w.call_server(_url(fake_server), {}, 5).outcome == w.RETRYABLE


def test_call_server_refused_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = w.call_server(f"http://127.0.0.1:{port}", {}, 2)
    assert result.outcome == w.UNAVAILABLE
    assert w.check_health(f"http://127.0.0.1:{port}") is False


class _KeepAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; records the client port of each request (one port per connection)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.ports.append(self.client_address[1])
        body = json.dumps({"choices": [{"message": {"content": "hi"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.close_after:
            self.close_connection = True  # closes without telling the client, as an idle timeout does

    def log_message(self, *args):
        return


@pytest.fixture
def keepalive_server():
    with _serving(_KeepAlive, ports=[], close_after=False, daemon_threads=True) as server:
        yield server


def test_call_server_keeps_its_connection_alive(keepalive_server):
    url = _url(keepalive_server)
    opened = w.SERVER_CONNECTIONS_OPENED.value
    results = [w.call_server(url, {"messages": []}, 5) for _request in range(3)]
    assert [r.outcome for r in results] == [w.OK] * 3
    assert len(keepalive_server.ports) == 3
    assert len(set(keepalive_server.ports)) == 1  # one connection for the three requests
    assert w.SERVER_CONNECTIONS_OPENED.value == opened + 1
    assert b"slm_queue_server_connections_opened_total" in w.Metrics("q").render()
    w._drop(url)


def test_call_server_replaces_a_connection_the_server_closed_while_idle(keepalive_server):
    url = _url(keepalive_server)
    keepalive_server.close_after = True
    first = w.call_server(url, {"messages": []}, 5)
    time.sleep(0.2)  # the server has closed it by now; the worker still holds it
    second = w.call_server(url, {"messages": []}, 5)
    assert (first.outcome, second.outcome) == (w.OK, w.OK)
    assert len(keepalive_server.ports) == 2  # sent once each: the retry went on a new connection
    assert keepalive_server.ports[0] != keepalive_server.ports[1]
    w._drop(url)


def test_call_server_without_keepalive_opens_a_connection_per_request(keepalive_server):
    url = _url(keepalive_server)
    for _request in range(2):
        assert w.call_server(url, {"messages": []}, 5, keepalive=False).outcome == w.OK
    assert len(set(keepalive_server.ports)) == 2


def test_health_ok(fake_server):
    assert w.check_health(_url(fake_server)) is True


# ---- client report ----------------------------------------------------------------


def test_client_report_counts_duplicates_missing_and_errors():
    ok = json.dumps({"choices": [{"message": {"content": "hello"}}]}).encode()
    err = json.dumps(w.error_reply("b", "rejected: HTTP 400", 1)).encode()
    submitted = {"a": 1.0, "b": 1.0, "c": 1.0}
    answers = {"a": [(1.5, ok), (1.7, ok)], "b": [(2.0, err)], "z": [(2.0, ok)]}
    out, code = c.report(submitted, answers, 2.0, -1)
    assert out["answered"] == 2
    assert out["duplicates"] == 1
    assert out["unexpected"] == 1
    assert out["missing"] == ["c"]
    assert out["errors"] == [{"correlation_id": "b", "error": "rejected: HTTP 400"}]
    assert out["latency_s"]["min"] == 0.5
    assert code == c.EXIT_MISSING


def test_client_report_all_answered():
    ok = json.dumps({"choices": [{"message": {"content": "hello"}}]}).encode()
    out, code = c.report({"a": 1.0}, {"a": [(1.25, ok)]}, 0.5, 5)
    assert code == c.EXIT_OK
    assert out["throughput_rps"] == 2.0
    assert out["answers"][0]["content"] == "hello"


def test_client_summarize_percentiles():
    s = c.summarize([float(i) for i in range(1, 101)])
    assert s["min"] == 1.0
    assert s["max"] == 100.0
    assert s["p50"] == 50.5  # linear interpolation, statistics.quantiles(method="inclusive")
    assert s["p95"] == 95.05
    one = c.summarize([2.5])
    assert (one["min"], one["p50"], one["p95"], one["max"]) == (2.5, 2.5, 2.5, 2.5)
    assert c.summarize([]) == {}


def test_client_direct_mode_against_a_fake_server(fake_server, capsys):
    fake_server.body = json.dumps({"choices": [{"message": {"content": "x"}}]}).encode()
    code = c.main(["--direct", _url(fake_server), "--count", "5", "--show", "0"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["answered"] == 5
    assert out["duplicates"] == 0


@pytest.mark.parametrize("flag", [["--no-wait"], ["--collect", "ids.json"]])
def test_client_needs_a_durable_reply_queue_to_collect_later(flag, capsys):
    with pytest.raises(SystemExit):
        c.parse_args(["--count", "2", *flag])
    assert "--reply-queue" in capsys.readouterr().err


def test_log_writer_prints_synchronously_until_started():
    out = io.StringIO()
    writer = w._LogWriter(size=2, stream=out)
    writer.write("one")
    assert out.getvalue() == "one\n"


def test_log_writer_drops_instead_of_blocking_when_full():
    out = io.StringIO()
    writer = w._LogWriter(size=2, stream=out)
    writer.thread = threading.current_thread()  # started, but nobody drains the buffer
    for i in range(5):
        writer.write(str(i))
    assert writer.dropped == 3
    assert writer.lines.qsize() == 2


def test_log_writer_thread_writes_lines():
    out = io.StringIO()
    writer = w._LogWriter(stream=out)
    writer.start()
    writer.write("a")
    writer.write("b")
    writer.flush()
    for _i in range(100):
        if out.getvalue() == "a\nb\n":
            break
        threading.Event().wait(0.01)
    assert out.getvalue() == "a\nb\n"
