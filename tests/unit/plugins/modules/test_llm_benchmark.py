"""Unit tests for slm.edge.llm_benchmark against a fake streaming llama-server on 127.0.0.1."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.slm.edge.plugins.module_utils import bench_report, bench_workloads
from ansible_collections.slm.edge.plugins.modules import llm_benchmark

MODEL_BYTES = 3_200_000_000


class FakeLlamaServer:
    """A tiny OpenAI-compatible server that streams SSE like llama-server (chunked, HTTP/1.1)."""

    def __init__(self, tokens=5, delay=0.003, mode="usage", fail=None, api_key=None, first_delay=0.0):
        self.tokens = tokens
        self.delay = delay
        self.first_delay = first_delay
        self.mode = mode  # usage | timings | chunks
        self.fail = fail or (lambda n: False)
        self.api_key = api_key
        self.lock = threading.Lock()
        self.posts = 0
        self.bodies = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # pylint: disable=redefined-builtin
                pass

            def _json(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self):
                return server.api_key is None or self.headers.get("Authorization") == "Bearer " + server.api_key

            def do_GET(self):
                if not self._authorized():
                    self._json(401, {"error": {"message": "Invalid API Key"}})
                elif self.path == "/props":
                    self._json(
                        200,
                        {
                            "default_generation_settings": {"n_ctx": 4096},
                            "total_slots": 4,
                            "model_path": "/opt/slm/models/Fake-1.7B-f16.gguf",
                            "build_info": "b4942-fake",
                        },
                    )
                elif self.path == "/v1/models":
                    self._json(
                        200,
                        {
                            "object": "list",
                            "data": [
                                {
                                    "id": "Fake-1.7B-f16.gguf",
                                    "meta": {"size": MODEL_BYTES, "n_params": 1_700_000_000, "n_ctx_train": 8192},
                                }
                            ],
                        },
                    )
                else:
                    self._json(404, {"error": "not found"})

            def _chunk(self, payload):
                data = ("data: " + payload + "\n\n").encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with server.lock:
                    n = server.posts
                    server.posts += 1
                    server.bodies.append(body)
                if not self._authorized():
                    self._json(401, {"error": {"message": "Invalid API Key"}})
                    return
                if server.fail(n):
                    self._json(500, {"error": {"code": 500, "message": f"injected failure {n}"}})
                    return
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._stream(body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _stream(self, body):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "fake"}
                self._chunk(json.dumps(dict(base, choices=[{"index": 0, "delta": {"role": "assistant"}}])))
                time.sleep(server.first_delay)
                for i in range(server.tokens):
                    time.sleep(server.delay)
                    delta = {"content": f"tok{i} "}
                    self._chunk(json.dumps(dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": None}])))
                final = dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "length"}])
                if server.mode == "timings":
                    final["timings"] = {"prompt_n": 77, "predicted_n": server.tokens + 100}
                self._chunk(json.dumps(final))
                include = (body.get("stream_options") or {}).get("include_usage")
                if server.mode == "usage" and include:
                    usage = {"completion_tokens": server.tokens + 1000, "prompt_tokens": 88, "total_tokens": 0}
                    self._chunk(json.dumps(dict(base, choices=[], usage=usage)))
                self._chunk("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler


def params(endpoints, **overrides):
    """Module params with the module's defaults, small enough for unit tests."""
    base = {
        "endpoints": endpoints,
        "api_key": None,
        "workload": "chatbot",
        "concurrency": [1],
        "requests_per_level": 4,
        "max_seconds_per_level": 30.0,
        "request_timeout": 10.0,
        "warmup_requests": 0,
        "chatbot_max_tokens": 200,
        "summarization_max_tokens": 256,
        "temperature": 0.0,
        "seed": 42,
        "cache_prompt": False,
        "ignore_eos": False,
        "model": None,
        "label": None,
        "include_requests": True,
        "output_json": None,
        "memory_bandwidth_gbps": None,
        "model_bytes": None,
        "validate_certs": True,
    }
    base.update(overrides)
    return base


def run_main(capsys, args):
    with patch_module_args(args), pytest.raises(SystemExit) as exc:
        llm_benchmark.main()
    out = json.loads(capsys.readouterr().out)
    return exc.value.code, out


# --- one request -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "source", "tokens", "prompt"),
    [("usage", "usage", 1004, 88), ("timings", "timings", 104, 77), ("chunks", "chunks", 4, None)],
)
def test_stream_chat_token_sources(mode, source, tokens, prompt):
    with FakeLlamaServer(tokens=4, delay=0.01, mode=mode) as srv:
        endpoint = llm_benchmark.Endpoint(srv.url)
        body = llm_benchmark.request_body("chatbot", 0, params([srv.url]))
        rec = llm_benchmark.stream_chat(endpoint, body, timeout=5)
    assert rec["error"] is None
    assert rec["status"] == 200
    assert rec["tokens_source"] == source
    assert rec["output_tokens"] == tokens
    assert rec["prompt_tokens"] == prompt
    assert rec["finish_reason"] == "length"
    # 4 content chunks -> 3 gaps between them
    assert len(rec["itl_ms"]) == 3
    assert all(gap >= 0 for gap in rec["itl_ms"])
    assert max(rec["itl_ms"]) > 0
    assert 0 < rec["ttft_ms"] <= rec["e2e_ms"]
    assert rec["e2e_ms"] >= rec["ttft_ms"] + sum(rec["itl_ms"]) - 1.0
    assert rec["output_tps"] > 0
    assert rec["decode_tps"] > 0


def test_ttft_measures_first_content_not_role_chunk():
    with FakeLlamaServer(tokens=2, delay=0.0, first_delay=0.15) as srv:
        rec = llm_benchmark.stream_chat(
            llm_benchmark.Endpoint(srv.url), llm_benchmark.request_body("chatbot", 0, params([srv.url])), 5
        )
    assert rec["error"] is None
    assert rec["ttft_ms"] >= 140


def test_request_body_follows_runbook_defaults():
    p = params(["http://127.0.0.1:1"])
    chat = llm_benchmark.request_body("chatbot", 3, p, model="m")
    assert chat["stream"] is True
    assert chat["stream_options"] == {"include_usage": True}
    assert chat["temperature"] == 0.0
    assert chat["seed"] == 42
    assert chat["max_tokens"] == 200
    assert chat["cache_prompt"] is False
    assert chat["model"] == "m"
    assert "ignore_eos" not in chat
    assert chat["messages"][0] == {"role": "system", "content": "You are a helpful assistant"}
    summ = llm_benchmark.request_body("summarization", 0, dict(p, ignore_eos=True))
    assert summ["max_tokens"] == 256
    assert summ["ignore_eos"] is True
    assert summ["messages"][0] == {"role": "system", "content": "You are a technical writer"}
    assert summ["messages"][1]["content"].startswith("Summarize the following text: Amazon DynamoDB is a serverless")


def test_chatbot_prompts_are_sized_like_the_runbook():
    # 50-150 input tokens: system prompt + question + ~15 tokens of chat template
    system = bench_workloads.estimate_tokens(bench_workloads.CHATBOT_SYSTEM)
    for prompt in bench_workloads.CHATBOT_PROMPTS:
        total = system + bench_workloads.estimate_tokens(prompt) + 15
        assert 50 <= total <= 150, prompt
    with pytest.raises(ValueError):
        bench_workloads.workload_messages("poetry", 0)


def test_request_timeout_is_an_error():
    with FakeLlamaServer(tokens=3, delay=0.5) as srv:
        rec = llm_benchmark.stream_chat(
            llm_benchmark.Endpoint(srv.url), llm_benchmark.request_body("chatbot", 0, params([srv.url])), 0.2
        )
    assert rec["error"].startswith("timeout")
    assert rec["output_tps"] is None


def test_connection_refused_is_an_error():
    with FakeLlamaServer() as srv:
        url = srv.url
    rec = llm_benchmark.stream_chat(
        llm_benchmark.Endpoint(url), llm_benchmark.request_body("chatbot", 0, params([url])), 2
    )
    assert rec["error"]
    assert rec["status"] is None


@pytest.mark.parametrize(
    ("url", "base", "port"),
    [
        ("http://127.0.0.1:8080", "", 8080),
        ("http://127.0.0.1:8080/", "", 8080),
        ("http://127.0.0.1:8080/v1", "", 8080),
        ("https://llm.example/proxy/v1/", "/proxy", None),
    ],
)
def test_endpoint_parsing(url, base, port):
    endpoint = llm_benchmark.Endpoint(url)
    assert endpoint.base == base
    assert endpoint.port == port
    assert endpoint.path("/v1/models") == base + "/v1/models"


def test_endpoint_rejects_non_http():
    with pytest.raises(ValueError):
        llm_benchmark.Endpoint("ftp://127.0.0.1:8080")
    with pytest.raises(ValueError):
        llm_benchmark.Endpoint("127.0.0.1:8080")


# --- sweeps ----------------------------------------------------------------------------------------


def test_sweep_counts_errors_per_level():
    # level 1 (concurrency 1) gets POSTs 0-7, level 2 (concurrency 4) POSTs 8-15; half of level 2 fails
    with FakeLlamaServer(tokens=3, delay=0.01, fail=lambda n: n >= 8 and n % 2 == 0) as srv:
        results = llm_benchmark.run_benchmark(params([srv.url], concurrency=[1, 4], requests_per_level=8))
        max_in_flight = srv.max_in_flight
    first, second = results["levels"]
    assert (first["concurrency"], first["requests"], first["success"], first["errors"]) == (1, 8, 8, 0)
    assert (second["concurrency"], second["requests"], second["success"], second["errors"]) == (4, 8, 4, 4)
    for level in results["levels"]:
        assert level["success"] + level["errors"] == level["requests"]
        assert level["workload"] == "chatbot"
        assert level["ttft_ms"]["p50"] <= level["ttft_ms"]["p95"] <= level["ttft_ms"]["p99"]
        assert level["e2e_ms"]["p50"] <= level["e2e_ms"]["p95"] <= level["e2e_ms"]["p99"]
        assert level["aggregate_output_tps"] > 0
    assert second["error_samples"] and second["error_samples"][0].startswith("HTTP 500")
    assert "injected failure" in second["error_samples"][0]
    assert results["totals"] == {"requests": 16, "success": 12, "errors": 4}
    assert len(results["requests"]) == 16
    assert sum(1 for r in results["requests"] if r["error"]) == 4
    # usage chunk: completion_tokens reported by the server (tokens + 1000) wins over chunk counting
    assert first["output_tokens_total"] == 8 * 1003
    assert 1 < max_in_flight <= 4


def test_level_bounded_by_requests():
    with FakeLlamaServer(tokens=2) as srv:
        results = llm_benchmark.run_benchmark(params([srv.url], concurrency=[4], requests_per_level=5))
        posts = srv.posts
    assert results["levels"][0]["requests"] == 5
    assert posts == 5
    assert sorted(r["index"] for r in results["requests"]) == [0, 1, 2, 3, 4]


def test_level_bounded_by_seconds():
    # each request takes ~0.1 s; after 0.25 s no new request starts, the ones in flight finish
    with FakeLlamaServer(tokens=5, delay=0.02) as srv:
        started = time.monotonic()
        results = llm_benchmark.run_benchmark(
            params([srv.url], concurrency=[2], requests_per_level=1000, max_seconds_per_level=0.25)
        )
        elapsed = time.monotonic() - started
    level = results["levels"][0]
    assert 2 <= level["requests"] < 20
    assert level["errors"] == 0
    assert all(r["start_ms"] < 250 + 200 for r in results["requests"])
    assert elapsed < 5
    assert level["wall_s"] >= 0.25


def test_round_robin_across_endpoints_and_server_info():
    with FakeLlamaServer(tokens=2) as a, FakeLlamaServer(tokens=2) as b:
        results = llm_benchmark.run_benchmark(params([a.url, b.url], concurrency=[2], requests_per_level=6))
        posts = (a.posts, b.posts)
    assert posts == (3, 3)
    assert {r["endpoint"] for r in results["requests"]} == {a.url, b.url}
    assert [s["url"] for s in results["servers"]] == [a.url, b.url]
    server = results["servers"][0]
    assert server["model_path"] == "/opt/slm/models/Fake-1.7B-f16.gguf"
    assert server["n_ctx"] == 4096
    assert server["n_ctx_train"] == 8192
    assert server["build_info"] == "b4942-fake"
    assert server["model_bytes"] == MODEL_BYTES
    assert server["errors"] == []
    assert results["config"]["label"] == "Fake-1.7B-f16.gguf"
    assert results["config"]["model"] == "Fake-1.7B-f16.gguf"


def test_both_workloads_warmup_roofline_and_no_requests():
    with FakeLlamaServer(tokens=4, delay=0.005) as srv:
        results = llm_benchmark.run_benchmark(
            params(
                [srv.url],
                workload="both",
                concurrency=[1, 2],
                requests_per_level=2,
                warmup_requests=1,
                memory_bandwidth_gbps=320.0,
                include_requests=False,
                label="A",
            )
        )
        bodies = list(srv.bodies)
    assert [(lv["workload"], lv["concurrency"]) for lv in results["levels"]] == [
        ("chatbot", 1),
        ("chatbot", 2),
        ("summarization", 1),
        ("summarization", 2),
    ]
    assert results["warmup"] == {"requests": 1, "errors": 0}
    assert len(bodies) == 1 + 4 * 2
    assert {b["max_tokens"] for b in bodies} == {200, 256}
    assert "requests" not in results
    roof = results["roofline"]
    assert roof["model_bytes"] == MODEL_BYTES
    assert roof["limit_tps"] == pytest.approx(100.0)
    assert roof["workload"] == "chatbot"
    assert roof["achieved_tps"] == results["levels"][0]["decode_tps"]["p50"]
    assert roof["ratio"] == pytest.approx(roof["achieved_tps"] / 100.0, rel=1e-3)
    assert results["config"]["label"] == "A"


# --- through AnsibleModule ---------------------------------------------------------------------------


def test_main_check_mode_sends_nothing(capsys):
    with FakeLlamaServer() as srv:
        code, out = run_main(capsys, {"endpoints": [srv.url], "_ansible_check_mode": True})
        posts = srv.posts
    assert code == 0
    assert out["skipped"] is True
    assert out["changed"] is False
    assert "benchmark" not in out
    assert posts == 0


def test_main_writes_json_and_hides_api_key(capsys, tmp_path):
    target = tmp_path / "bench.json"
    secret = "s3cr3t-key-value"
    with FakeLlamaServer(tokens=2, api_key=secret) as srv:
        code, out = run_main(
            capsys,
            {
                "endpoints": [srv.url],
                "api_key": secret,
                "concurrency": [1, 2],
                "requests_per_level": 2,
                "warmup_requests": 0,
                "output_json": str(target),
                "label": "q4_k_m",
            },
        )
    assert code == 0, out
    assert out["changed"] is True
    assert out["output_json"] == str(target)
    written = json.loads(target.read_text())
    assert written == out["benchmark"]
    assert "results" not in out  # reserved by Ansible for loops
    assert written["schema_version"] == 1
    assert written["config"]["label"] == "q4_k_m"
    assert "api_key" not in written["config"]
    assert secret not in target.read_text()
    assert written["totals"] == {"requests": 4, "success": 4, "errors": 0}
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    # what the module writes is what the report renders (beside a copy under another label;
    # the same label twice would be two rounds of one configuration)
    report = bench_report.render_markdown([written, dict(written, config=dict(written["config"], label="again"))])
    assert "## q4_k_m" in report
    assert "| chatbot | 2 | 2 | 0 |" in report
    assert "1.00x" in report


def test_main_fails_when_nothing_succeeds(capsys):
    with FakeLlamaServer(api_key="right") as srv:
        code, out = run_main(
            capsys, {"endpoints": [srv.url], "api_key": "wrong", "concurrency": [1], "requests_per_level": 2}
        )
    assert code == 1
    assert out["failed"] is True
    assert "no request succeeded" in out["msg"]
    assert "HTTP 401" in out["msg"]
    assert out["benchmark"]["totals"] == {"requests": 2, "success": 0, "errors": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"endpoints": ["127.0.0.1:8080"]}, "not an http(s) URL"),
        ({"endpoints": ["http://127.0.0.1:1"], "concurrency": [0]}, "concurrency"),
        ({"endpoints": ["http://127.0.0.1:1"], "max_seconds_per_level": 0}, "max_seconds_per_level"),
        ({"endpoints": ["http://127.0.0.1:1"], "memory_bandwidth_gbps": -1}, "memory_bandwidth_gbps"),
    ],
)
def test_main_validates_options(capsys, args, message):
    code, out = run_main(capsys, args)
    assert code == 1
    assert message in out["msg"]
