#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

DOCUMENTATION = r"""
---
module: llm_benchmark
short_description: Load OpenAI-compatible llama-server endpoints and measure latency and throughput
version_added: 0.1.0
description:
  - Sends streaming chat completions to one or more OpenAI-compatible endpoints (llama-server's
    C(/v1/chat/completions)) the way users load them, and measures what each request saw.
  - Runs a concurrency sweep. Every level keeps O(concurrency) requests in flight until
    O(requests_per_level) requests have been sent or O(max_seconds_per_level) has passed; after the deadline
    no new request starts and the ones in flight finish (each bounded by O(request_timeout)).
  - Requests use C(stream=true), so the time to first token (TTFT) is the time until the first content
    chunk arrives; inter-token latency (ITL) is the gap between consecutive content chunks; end-to-end
    latency is the time until the stream ends. Output tokens come from the C(usage) chunk that
    C(stream_options.include_usage) asks for, else from llama-server's C(timings.predicted_n), else from the
    number of content chunks.
  - Per level it reports p50/p95/p99 of TTFT, ITL, end-to-end latency and per-request output tokens/s, the
    aggregate output tokens/s (total output tokens / wall time of the level) and request, success and error
    counts (C(requests = success + errors)).
  - The load is generated where the module runs. Run it on the server itself to measure the service
    without the network, or C(delegate_to) the controller (or any host) to include it.
  - Uses only the Python standard library (C(http.client) and threads); nothing to install on the host.
  - Workloads are the runbook's two use cases. C(chatbot) uses the system prompt "You are a helpful
    assistant" and short user questions (about 50-150 input tokens, up to O(chatbot_max_tokens) output
    tokens). C(summarization) uses the system prompt "You are a technical writer" and
    "Summarize the following text:" followed by a paragraph of about 180 tokens (the first is the runbook's
    Amazon DynamoDB text), up to O(summarization_max_tokens) output tokens.
author:
  - slm.edge maintainers (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode no request is sent and no file is written; the task is reported as skipped.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  endpoints:
    description:
      - Base URLs of the endpoints, for example V(http://127.0.0.1:8080).
      - A path prefix (reverse proxy) is kept; a trailing C(/v1) is removed, so OpenAI-style base URLs work too.
      - Requests are spread round-robin across the endpoints (request I(i) of a level goes to endpoint
        I(i mod n)).
    type: list
    elements: str
    required: true
  api_key:
    description:
      - Sent as C(Authorization Bearer) when set (llama-server C(--api-key)).
      - Never returned and never written to O(output_json).
    type: str
  workload:
    description:
      - Which built-in workload to run. V(both) runs the whole sweep once per workload, chatbot first.
    type: str
    choices: [chatbot, summarization, both]
    default: chatbot
  concurrency:
    description:
      - Concurrency levels of the sweep, run in the order given. Each must be at least 1.
    type: list
    elements: int
    default: [1, 4, 16]
  requests_per_level:
    description:
      - Most requests sent in one level (per workload).
    type: int
    default: 32
  max_seconds_per_level:
    description:
      - After this many seconds from the start of a level no new request is sent in it; requests in flight
        finish.
    type: float
    default: 120
  request_timeout:
    description:
      - Most seconds one request may take (connect, every read and the whole stream). A request that takes
        longer counts as an error.
    type: float
    default: 300
  warmup_requests:
    description:
      - Requests sent to every endpoint before the sweep and not counted (loads weights into caches,
        first CUDA graph capture).
    type: int
    default: 1
  chatbot_max_tokens:
    description:
      - C(max_tokens) of chatbot requests (the runbook expects 100-300 output tokens).
    type: int
    default: 200
  summarization_max_tokens:
    description:
      - C(max_tokens) of summarization requests.
    type: int
    default: 256
  temperature:
    description:
      - Sampling temperature. V(0) (greedy) makes runs comparable, as the runbook's C(--temp 0).
    type: float
    default: 0.0
  seed:
    description:
      - Sampling seed sent with every request, so repeated runs generate the same text.
    type: int
    default: 42
  cache_prompt:
    description:
      - Value of llama-server's C(cache_prompt) request field. V(false) makes every request process its
        whole prompt, as different users' prompts would; V(true) lets a slot reuse a matching prefix.
    type: bool
    default: false
  ignore_eos:
    description:
      - When V(true), sends llama-server's C(ignore_eos) so every request generates exactly C(max_tokens)
        tokens (comparable token counts across models). Not sent when V(false).
    type: bool
    default: false
  model:
    description:
      - C(model) field of the requests. Defaults to the first model id reported by C(/v1/models), or none.
    type: str
  label:
    description:
      - Name of this configuration in reports and plots, for example V(f16-ngl99) or V(q4_k_m).
      - Defaults to the model file name from C(/props), else the model id, else the first endpoint's host
        and port.
    type: str
  include_requests:
    description:
      - Return (and write) one record per request in RV(benchmark.requests), including its inter-token gaps.
    type: bool
    default: true
  output_json:
    description:
      - Also write RV(benchmark) as JSON to this path on the host where the module runs (mode C(0644)).
        The directory must exist.
    type: path
  memory_bandwidth_gbps:
    description:
      - Memory bandwidth of the device that holds the weights, in GB/s (1e9 bytes/s), for example V(320)
        for an NVIDIA T4.
      - When set, RV(benchmark.roofline) compares the single-stream decode speed (median decode tokens/s at
        concurrency 1) with the limit bandwidth / model bytes.
    type: float
  model_bytes:
    description:
      - Size of the model weights in bytes for the roofline. Defaults to the C(meta.size) that
        llama-server reports in C(/v1/models).
    type: int
  validate_certs:
    description:
      - Verify TLS certificates of V(https) endpoints.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the CA certificates V(https) endpoints are verified with, instead of the system trust store
        (slm.edge.llama_server publishes it as C(tls_ca_file) of each instance).
    type: path
notes:
  - The module only reads from the endpoints; it reports C(changed) only when it writes O(output_json).
  - The task fails when no request of the whole run succeeded (server down, wrong URL or key); the partial
    RV(benchmark) results are returned with the failure.
seealso:
  - name: llama-server HTTP API
    description: Endpoints and request fields of llama.cpp's server.
    link: https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md
"""

EXAMPLES = r"""
- name: Measure the local llama-server with the chatbot workload
  slm.edge.llm_benchmark:
    endpoints:
      - http://127.0.0.1:8080
    workload: chatbot
    concurrency: [1, 4, 16]
    label: smollm2-1.7b-f16
  register: bench

- name: Load two servers from the controller, both workloads, roofline for a T4, keep the JSON
  slm.edge.llm_benchmark:
    endpoints:
      - "http://{{ hostvars['slm-1'].ansible_host }}:8080"
      - "http://{{ hostvars['slm-2'].ansible_host }}:8080"
    api_key: "{{ llama_server_api_key }}"
    workload: both
    concurrency: [1, 2, 4, 8, 16, 32]
    requests_per_level: 64
    max_seconds_per_level: 180
    memory_bandwidth_gbps: 320
    output_json: "{{ playbook_dir }}/bench/q4_k_m.json"
    label: q4_k_m
  delegate_to: localhost
  run_once: true

- name: Show the aggregate throughput per level
  ansible.builtin.debug:
    msg: "{{ bench.benchmark.levels | map(attribute='aggregate_output_tps') | list }}"
"""

RETURN = r"""
benchmark:
  description:
    - Everything measured; the same document is written to O(output_json).
    - Named C(benchmark) because Ansible reserves C(results) in module returns (it holds loop results).
    - The report (C(bench_report.py)) and plot (C(bench_plot.py)) tools of the C(slm.edge.benchmark) role
      read a list of these, one per configuration.
  returned: success and failure (not in check mode)
  type: dict
  contains:
    schema_version:
      description: Version of this document's format.
      type: int
      sample: 1
    config:
      description: The module options without O(api_key), with O(label) resolved.
      type: dict
      sample:
        label: smollm2-1.7b-f16
        endpoints: [http://127.0.0.1:8080]
        workload: chatbot
        concurrency: [1, 4, 16]
    servers:
      description:
        - One entry per endpoint with what C(GET /props) and C(GET /v1/models) told (missing keys are null).
      type: list
      elements: dict
      sample:
        - url: http://127.0.0.1:8080
          model_path: /opt/slm/models/SmolLM2-1.7B-Instruct-f16.gguf
          model_id: SmolLM2-1.7B-Instruct-f16.gguf
          n_ctx: 8192
          n_ctx_train: 8192
          total_slots: 4
          build_info: b4942-4a1b3d2
          model_bytes: 3422222080
          n_params: 1711376384
          errors: []
    started_at:
      description: UTC start time (ISO 8601).
      type: str
      sample: "2025-06-23T10:00:00Z"
    duration_s:
      description: Seconds the whole run took, warm-up included.
      type: float
      sample: 95.2
    warmup:
      description: Warm-up requests sent and how many failed.
      type: dict
      sample: {requests: 1, errors: 0}
    totals:
      description: Requests, successes and errors over all levels.
      type: dict
      sample: {requests: 96, success: 96, errors: 0}
    levels:
      description:
        - One summary per workload and concurrency level.
        - Latencies in milliseconds and throughputs in tokens/s, each a distribution with C(count), C(min),
          C(mean), C(p50), C(p95), C(p99) and C(max) (linear interpolation between closest ranks).
        - Latency and throughput statistics cover successful requests only.
      type: list
      elements: dict
      sample:
        - workload: chatbot
          concurrency: 4
          requests: 32
          success: 31
          errors: 1
          error_rate: 0.0312
          error_samples: ["HTTP 503: {\"error\": ...}"]
          wall_s: 41.2
          output_tokens_total: 5890
          prompt_tokens_total: 2480
          aggregate_output_tps: 142.96
          requests_per_s: 0.752
          ttft_ms: {count: 31, min: 38.1, mean: 61.0, p50: 55.2, p95: 101.4, p99: 120.3, max: 125.0}
          itl_ms: {count: 5859, min: 18.0, mean: 26.3, p50: 25.9, p95: 31.0, p99: 40.2, max: 80.1}
          e2e_ms: {count: 31, min: 3900.0, mean: 5010.0, p50: 5100.0, p95: 5400.0, p99: 5420.0, max: 5425.0}
          output_tps: {count: 31, min: 35.0, mean: 37.9, p50: 37.6, p95: 39.8, p99: 40.0, max: 40.1}
          decode_tps: {count: 31, min: 36.0, mean: 38.5, p50: 38.4, p95: 40.2, p99: 40.4, max: 40.5}
    requests:
      description:
        - One record per request, in the order they finished (only with O(include_requests)).
        - C(tokens_source) says where C(output_tokens) came from (V(usage), V(timings) or V(chunks)).
      type: list
      elements: dict
      sample:
        - workload: chatbot
          concurrency: 4
          index: 0
          endpoint: http://127.0.0.1:8080
          status: 200
          start_ms: 0.4
          ttft_ms: 52.1
          e2e_ms: 5102.3
          itl_ms: [25.1, 26.0]
          output_tokens: 200
          prompt_tokens: 80
          tokens_source: usage
          finish_reason: length
          output_tps: 39.2
          decode_tps: 39.4
          error: null
    roofline:
      description:
        - Only with O(memory_bandwidth_gbps) and a known model size.
        - C(limit_tps) = bandwidth / model bytes; C(achieved_tps) = median decode tokens/s at concurrency 1
          (first workload); C(ratio) = achieved / limit.
      type: dict
      sample: {memory_bandwidth_gbps: 320, model_bytes: 3422222080, limit_tps: 93.51, achieved_tps: 38.4,
               ratio: 0.4107, workload: chatbot}
output_json:
  description: Path the results were written to.
  returned: when O(output_json) is set and not in check mode
  type: str
  sample: /tmp/bench/q4_k_m.json
"""

import http.client
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.slm.edge.plugins.module_utils.bench_stats import (
    request_decode_tps,
    request_output_tps,
    roofline,
    single_stream_decode_tps,
    summarize_level,
)
from ansible_collections.slm.edge.plugins.module_utils.bench_workloads import WORKLOADS, workload_messages

SCHEMA_VERSION = 1
ERROR_BODY_BYTES = 512


class Endpoint:
    """One OpenAI-compatible base URL."""

    def __init__(self, url, api_key=None, validate_certs=True, ca_path=None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("endpoint %r is not an http(s) URL such as http://127.0.0.1:8080" % (url,))
        self.url = url
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        base = parts.path.rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")]
        self.base = base
        self.api_key = api_key
        self.ssl_context = None
        if self.scheme == "https":
            self.ssl_context = ssl.create_default_context(cafile=ca_path or None)
            if not validate_certs:
                self.ssl_context.check_hostname = False
                self.ssl_context.verify_mode = ssl.CERT_NONE

    def connection(self, timeout):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def path(self, suffix):
        return self.base + suffix

    def headers(self, extra=None):
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = "Bearer %s" % self.api_key
        if extra:
            headers.update(extra)
        return headers

    def get_json(self, suffix, timeout):
        """GET a JSON document; returns (document, error string)."""
        conn = None
        try:
            conn = self.connection(timeout)
            conn.request("GET", self.path(suffix), headers=self.headers())
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                return None, "GET %s: HTTP %d" % (suffix, resp.status)
            return json.loads(body.decode("utf-8")), None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return None, "GET %s: %s: %s" % (suffix, type(exc).__name__, exc)
        finally:
            if conn is not None:
                conn.close()


def _ms(seconds):
    return round(seconds * 1000.0, 3)


def _short(text, limit=200):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def stream_chat(endpoint, body, timeout, clock=time.perf_counter):
    """Send one streaming chat completion and time it. Returns a request record."""
    rec = {
        "endpoint": endpoint.url,
        "status": None,
        "ttft_ms": None,
        "e2e_ms": None,
        "itl_ms": [],
        "output_tokens": None,
        "prompt_tokens": None,
        "tokens_source": None,
        "finish_reason": None,
        "output_tps": None,
        "decode_tps": None,
        "error": None,
    }
    payload = json.dumps(body).encode("utf-8")
    chunk_times = []
    usage = None
    timings = None
    done = False
    conn = None
    t0 = clock()
    deadline = t0 + timeout
    try:
        conn = endpoint.connection(timeout)
        conn.request(
            "POST",
            endpoint.path("/v1/chat/completions"),
            body=payload,
            headers=endpoint.headers({"Content-Type": "application/json", "Accept": "text/event-stream"}),
        )
        resp = conn.getresponse()
        rec["status"] = resp.status
        if resp.status != 200:
            text = resp.read(ERROR_BODY_BYTES).decode("utf-8", "replace")
            rec["error"] = "HTTP %d: %s" % (resp.status, _short(text))
        while rec["error"] is None:
            line = resp.readline()
            now = clock()
            if not line:
                break
            if now > deadline:
                rec["error"] = "timeout: request took longer than %ss" % timeout
                break
            line = line.strip()
            if not line or line.startswith(b":"):
                continue
            if line.startswith(b"error:"):
                rec["error"] = "stream error: %s" % _short(line[6:].decode("utf-8", "replace"))
                break
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
                break
            obj = json.loads(data.decode("utf-8"))
            if not isinstance(obj, dict):
                continue
            if obj.get("error"):
                rec["error"] = "stream error: %s" % _short(json.dumps(obj["error"]))
                break
            if obj.get("usage"):
                usage = obj["usage"]
            if obj.get("timings"):
                timings = obj["timings"]
            for choice in obj.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content") or delta.get("reasoning_content"):
                    chunk_times.append(now)
                if choice.get("finish_reason"):
                    rec["finish_reason"] = choice["finish_reason"]
    except socket.timeout:
        rec["error"] = "timeout: no data for %ss" % timeout
    except (OSError, http.client.HTTPException, ValueError) as exc:
        rec["error"] = "%s: %s" % (type(exc).__name__, _short(str(exc)))
    finally:
        if conn is not None:
            conn.close()
    end = clock()
    if rec["error"] is None and not done and rec["finish_reason"] is None:
        rec["error"] = "stream ended before [DONE]"

    rec["e2e_ms"] = _ms(end - t0)
    if chunk_times:
        rec["ttft_ms"] = _ms(chunk_times[0] - t0)
        rec["itl_ms"] = [_ms(chunk_times[i] - chunk_times[i - 1]) for i in range(1, len(chunk_times))]
    if usage and usage.get("completion_tokens") is not None:
        rec["output_tokens"] = int(usage["completion_tokens"])
        rec["tokens_source"] = "usage"
    elif timings and timings.get("predicted_n") is not None:
        rec["output_tokens"] = int(timings["predicted_n"])
        rec["tokens_source"] = "timings"
    else:
        rec["output_tokens"] = len(chunk_times)
        rec["tokens_source"] = "chunks"
    if usage and usage.get("prompt_tokens") is not None:
        rec["prompt_tokens"] = int(usage["prompt_tokens"])
    elif timings and timings.get("prompt_n") is not None:
        rec["prompt_tokens"] = int(timings["prompt_n"])
    if rec["error"] is None:
        tps = request_output_tps(rec["output_tokens"], rec["e2e_ms"])
        dec = request_decode_tps(rec["output_tokens"], rec["ttft_ms"], rec["e2e_ms"])
        rec["output_tps"] = round(tps, 3) if tps is not None else None
        rec["decode_tps"] = round(dec, 3) if dec is not None else None
    return rec


def request_body(workload, index, params, model=None):
    """The JSON body of request ``index`` of ``workload``."""
    body = {
        "messages": workload_messages(workload, index),
        "max_tokens": params["%s_max_tokens" % workload],
        "temperature": params["temperature"],
        "seed": params["seed"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "cache_prompt": params["cache_prompt"],
    }
    if params.get("ignore_eos"):
        body["ignore_eos"] = True
    if model:
        body["model"] = model
    return body


def run_level(endpoints, workload, concurrency, params, *, model=None, clock=time.perf_counter):
    """Run one concurrency level; returns (records, wall seconds)."""
    lock = threading.Lock()
    state = {"issued": 0}
    records = []
    limit = params["requests_per_level"]
    timeout = params["request_timeout"]
    start = clock()
    deadline = start + params["max_seconds_per_level"]

    def worker():
        while True:
            with lock:
                if state["issued"] >= limit or clock() >= deadline:
                    return
                index = state["issued"]
                state["issued"] += 1
            endpoint = endpoints[index % len(endpoints)]
            sent = clock()
            rec = stream_chat(endpoint, request_body(workload, index, params, model), timeout, clock)
            rec.update(
                {
                    "workload": workload,
                    "concurrency": concurrency,
                    "index": index,
                    "start_ms": _ms(sent - start),
                }
            )
            with lock:
                records.append(rec)

    threads = [threading.Thread(target=worker, name="bench-%d" % i) for i in range(min(concurrency, limit))]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        thread.join()
    wall = clock() - start
    return records, wall


def server_info(endpoint, timeout):
    """What /props and /v1/models say about the server behind ``endpoint``."""
    info = {
        "url": endpoint.url,
        "model_path": None,
        "model_id": None,
        "n_ctx": None,
        "n_ctx_train": None,
        "total_slots": None,
        "build_info": None,
        "model_bytes": None,
        "n_params": None,
        "errors": [],
    }
    props, err = endpoint.get_json("/props", timeout)
    if err:
        info["errors"].append(err)
    if isinstance(props, dict):
        settings = props.get("default_generation_settings") or {}
        info["model_path"] = props.get("model_path")
        info["n_ctx"] = settings.get("n_ctx", props.get("n_ctx"))
        info["total_slots"] = props.get("total_slots")
        info["build_info"] = props.get("build_info")
    models, err = endpoint.get_json("/v1/models", timeout)
    if err:
        info["errors"].append(err)
    data = models.get("data") if isinstance(models, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        first = data[0]
        meta = first.get("meta") or {}
        info["model_id"] = first.get("id")
        info["model_bytes"] = meta.get("size")
        info["n_params"] = meta.get("n_params")
        info["n_ctx_train"] = meta.get("n_ctx_train")
    return info


def default_label(servers, endpoints):
    first = servers[0] if servers else {}
    if first.get("model_path"):
        return os.path.basename(first["model_path"].rstrip("/"))
    if first.get("model_id"):
        return os.path.basename(str(first["model_id"]).rstrip("/"))
    return endpoints[0].host + (":%d" % endpoints[0].port if endpoints[0].port else "")


def _utc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def run_benchmark(params, clock=time.perf_counter):
    """Run the whole benchmark described by module ``params``; returns the results dict."""
    endpoints = [
        Endpoint(url, params.get("api_key"), params.get("validate_certs", True), params.get("ca_path"))
        for url in params["endpoints"]
    ]
    started = time.time()
    t_start = clock()
    info_timeout = min(params["request_timeout"], 30)
    servers = [server_info(ep, info_timeout) for ep in endpoints]
    model = params.get("model") or servers[0].get("model_id")
    workloads = list(WORKLOADS) if params["workload"] == "both" else [params["workload"]]

    warmup = {"requests": 0, "errors": 0}
    for endpoint in endpoints:
        for i in range(params["warmup_requests"]):
            rec = stream_chat(endpoint, request_body(workloads[0], i, params, model), params["request_timeout"], clock)
            warmup["requests"] += 1
            if rec["error"]:
                warmup["errors"] += 1

    levels = []
    requests = []
    for workload in workloads:
        for concurrency in params["concurrency"]:
            records, wall = run_level(endpoints, workload, concurrency, params, model=model, clock=clock)
            records.sort(key=lambda r: r["start_ms"])
            levels.append(summarize_level(records, wall, concurrency=concurrency, workload=workload))
            requests.extend(records)

    config = {k: v for k, v in params.items() if k != "api_key"}
    config["label"] = params.get("label") or default_label(servers, endpoints)
    config["model"] = model
    results = {
        "schema_version": SCHEMA_VERSION,
        "config": config,
        "servers": servers,
        "started_at": _utc(started),
        "duration_s": round(clock() - t_start, 3),
        "warmup": warmup,
        "totals": {
            "requests": sum(lv["requests"] for lv in levels),
            "success": sum(lv["success"] for lv in levels),
            "errors": sum(lv["errors"] for lv in levels),
        },
        "levels": levels,
    }
    if params.get("include_requests", True):
        results["requests"] = requests
    if params.get("memory_bandwidth_gbps"):
        model_bytes = params.get("model_bytes") or servers[0].get("model_bytes")
        if model_bytes:
            line = roofline(
                params["memory_bandwidth_gbps"], model_bytes, single_stream_decode_tps(levels, workloads[0])
            )
            line["workload"] = workloads[0]
            results["roofline"] = line
    return results


def write_json(module, path, results):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        module.fail_json(msg="output_json: directory %s does not exist" % directory, benchmark=results)
    fd, tmp = tempfile.mkstemp(prefix=".llm_benchmark.", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(results, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(tmp, 0o644)
        module.atomic_move(tmp, os.path.abspath(path))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def validate(module):
    params = module.params
    problems = []
    if not params["endpoints"]:
        problems.append("endpoints must list at least one base URL such as http://127.0.0.1:8080")
    if not params["concurrency"] or any(c < 1 for c in params["concurrency"]):
        problems.append("concurrency must be a non-empty list of integers >= 1")
    for name in ("requests_per_level", "chatbot_max_tokens", "summarization_max_tokens"):
        if params[name] < 1:
            problems.append("%s must be >= 1" % name)
    for name in ("max_seconds_per_level", "request_timeout"):
        if params[name] <= 0:
            problems.append("%s must be > 0" % name)
    if params["warmup_requests"] < 0:
        problems.append("warmup_requests must be >= 0")
    if params["memory_bandwidth_gbps"] is not None and params["memory_bandwidth_gbps"] <= 0:
        problems.append("memory_bandwidth_gbps must be > 0")
    if params["model_bytes"] is not None and params["model_bytes"] <= 0:
        problems.append("model_bytes must be > 0")
    for url in params["endpoints"] or []:
        try:
            Endpoint(url)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        module.fail_json(msg="; ".join(problems))


# The module's parameters; tests/gpu/side_by_side.py takes its defaults from here.
ARGUMENT_SPEC = {
    "endpoints": {"type": "list", "elements": "str", "required": True},
    "api_key": {"type": "str", "no_log": True},
    "workload": {"type": "str", "choices": ["chatbot", "summarization", "both"], "default": "chatbot"},
    "concurrency": {"type": "list", "elements": "int", "default": [1, 4, 16]},
    "requests_per_level": {"type": "int", "default": 32},
    "max_seconds_per_level": {"type": "float", "default": 120},
    "request_timeout": {"type": "float", "default": 300},
    "warmup_requests": {"type": "int", "default": 1},
    "chatbot_max_tokens": {"type": "int", "default": 200, "no_log": False},
    "summarization_max_tokens": {"type": "int", "default": 256, "no_log": False},
    "temperature": {"type": "float", "default": 0.0},
    "seed": {"type": "int", "default": 42},
    "cache_prompt": {"type": "bool", "default": False},
    "ignore_eos": {"type": "bool", "default": False},
    "model": {"type": "str"},
    "label": {"type": "str"},
    "include_requests": {"type": "bool", "default": True},
    "output_json": {"type": "path"},
    "memory_bandwidth_gbps": {"type": "float"},
    "model_bytes": {"type": "int"},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
}


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    validate(module)
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, msg="check mode: no request sent, nothing written")

    results = run_benchmark(module.params)
    if results["totals"]["success"] == 0:
        samples = sorted({e for lv in results["levels"] for e in lv["error_samples"]})[:3]
        module.fail_json(
            msg="no request succeeded against %s: %s" % (", ".join(module.params["endpoints"]), "; ".join(samples)),
            benchmark=results,
        )
    out = {"changed": False, "benchmark": results}
    if module.params["output_json"]:
        write_json(module, module.params["output_json"], results)
        out["changed"] = True
        out["output_json"] = module.params["output_json"]
    module.exit_json(**out)


if __name__ == "__main__":
    main()
