"""slm.edge prompt queue client: submit chat requests through RabbitMQ and wait for the answers.

One prompt, answered on an exclusive auto-delete reply queue:
  slm_queue_client.py --config /etc/slm-queue/client.json --system "You are a helpful assistant" --prompt Hello
N copies at once (load test), with latencies per correlation id:
  slm_queue_client.py --config client.json --prompt Hello --count 200
Requests are published persistent, in one transaction per batch (committed = on the
broker's disk). Submit now, collect later (a durable reply queue survives a broker restart):
  slm_queue_client.py --config client.json --prompt Hello --count 20 --reply-queue slm.reply.test --no-wait > ids.json
  slm_queue_client.py --config client.json --reply-queue slm.reply.test --collect ids.json
The same requests straight to llama-server, all at once (what an ALB does), for comparison:
  slm_queue_client.py --direct http://127.0.0.1:8080 --prompt Hello --count 200

Prints one JSON document. Exit status: 0 every request answered, 1 some missing
(timeout), 2 cannot connect or log in, 3 some answers are errors (dead-lettered).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import os
import ssl
import statistics
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

try:
    import pika
except ImportError:
    pika = None

EXIT_OK, EXIT_MISSING, EXIT_CONNECT, EXIT_ERRORS = 0, 1, 2, 3


def summarize(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    ordered = sorted(latencies)
    # Linear interpolation between closest ranks (numpy's default), as the benchmark module reports.
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99

    return {
        "min": round(ordered[0], 4),
        "p50": round(cuts[49], 4),
        "p95": round(cuts[94], 4),
        "max": round(ordered[-1], 4),
        "mean": round(statistics.fmean(ordered), 4),
    }


def build_body(args: argparse.Namespace) -> bytes:
    if args.body_file:
        with open(args.body_file, "rb") as fh:
            return fh.read()
    messages = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.prompt})
    body = {"messages": messages, "max_tokens": args.max_tokens, "temperature": args.temperature, "seed": args.seed}
    if args.model:
        body["model"] = args.model
    return json.dumps(body).encode()


def answer_text(body: bytes) -> tuple[str | None, str | None]:
    """(content, error) of a reply body."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, "reply is not JSON"
    if data.get("object") == "error" or "error" in data:
        err = data.get("error")
        return None, err.get("message") if isinstance(err, dict) else str(err)
    try:
        return data["choices"][0]["message"]["content"], None
    except (KeyError, IndexError, TypeError):
        return None, "reply has no choices[0].message.content"


def report(
    submitted: dict[str, float], answers: dict[str, list[tuple[float, bytes]]], wall: float, show: int
) -> tuple[dict[str, Any], int]:
    latencies, errors, rows = [], [], []
    duplicates = 0
    for cid, start in submitted.items():
        got = answers.get(cid, [])
        if not got:
            continue
        duplicates += len(got) - 1
        received, body = got[0]
        content, error = answer_text(body)
        latency = received - start if start else None
        if latency is not None:
            latencies.append(latency)
        if error:
            errors.append({"correlation_id": cid, "error": error})
        rows.append(
            {
                "correlation_id": cid,
                "latency_s": None if latency is None else round(latency, 4),
                "content": content,
                "error": error,
            }
        )
    missing = [cid for cid in submitted if not answers.get(cid)]
    answered = len(submitted) - len(missing)
    out = {
        "submitted": len(submitted),
        "answered": answered,
        "duplicates": duplicates,
        "unexpected": sum(len(v) for k, v in answers.items() if k not in submitted),
        "missing": missing,
        "errors": errors,
        "wall_s": round(wall, 4),
        "throughput_rps": round(answered / wall, 3) if wall > 0 else None,
        "latency_s": summarize(latencies),
        # This client's own CPU seconds (what sending and collecting cost on its host).
        "cpu_s": round(time.process_time(), 4),
        "answers": rows[:show] if show >= 0 else rows,
    }
    code = EXIT_MISSING if missing else EXIT_ERRORS if errors else EXIT_OK
    return out, code


# ----------------------------------------------------------------------------
# Through the queue
# ----------------------------------------------------------------------------


def load_settings(args: argparse.Namespace) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            cfg = json.load(fh)
    amqp = cfg.get("amqp", {})
    password = args.password if args.password is not None else os.environ.get("SLM_QUEUE_PASSWORD")
    return {
        "host": args.host or amqp.get("host", "127.0.0.1"),
        "port": int(args.port or amqp.get("port", 5672)),
        "vhost": args.vhost or amqp.get("vhost", "/"),
        "user": args.user or amqp.get("user", "guest"),
        "password": password if password is not None else amqp.get("password", ""),
        "tls": args.tls or bool(amqp.get("tls", False)),
        "ca_file": args.ca_file or amqp.get("ca_file", ""),
        "queue": args.queue or cfg.get("queue", "slm.chat"),
    }


def connect(settings: dict[str, Any]):
    ssl_options = None
    if settings["tls"]:
        context = ssl.create_default_context(cafile=settings["ca_file"] or None)
        ssl_options = pika.SSLOptions(context, settings["host"])
    params = pika.ConnectionParameters(
        host=settings["host"],
        port=settings["port"],
        virtual_host=settings["vhost"],
        credentials=pika.PlainCredentials(settings["user"], settings["password"]),
        ssl_options=ssl_options,
        connection_attempts=1,
        socket_timeout=10,
        client_properties={"connection_name": "slm-queue-client"},
    )
    return pika.BlockingConnection(params)


def connect_error(settings: dict[str, Any], exc: Exception) -> str:
    where = f"amqp{'s' if settings['tls'] else ''}://{settings['host']}:{settings['port']} vhost {settings['vhost']!r}"
    if isinstance(exc, pika.exceptions.ProbableAuthenticationError | pika.exceptions.AuthenticationError):
        return (
            f"authentication refused by the broker at {where} for user {settings['user']!r}: wrong password or "
            "unknown user. Check --user/--password (or SLM_QUEUE_PASSWORD, or the client configuration file); "
            "the role sets them from prompt_queue_client_user / prompt_queue_client_password."
        )
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError):
        return (
            f"user {settings['user']!r} may not use vhost {settings['vhost']!r} at {where}: check --vhost "
            "(prompt_queue_vhost) and the user's permissions."
        )
    return f"cannot connect to the broker at {where}: {exc!r}. Is rabbitmq-server running and the port right?"


def via_queue(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    if pika is None:
        return {"failed": True, "msg": "the pika package is needed: run with the worker's venv python"}, EXIT_CONNECT
    settings = load_settings(args)
    try:
        connection = connect(settings)
    except pika.exceptions.AMQPError as exc:
        return {"failed": True, "msg": connect_error(settings, exc)}, EXIT_CONNECT
    channel = connection.channel()
    if args.reply_queue:
        reply_to = args.reply_queue
        channel.queue_declare(reply_to, durable=True)
    else:
        reply_to = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue

    submitted: dict[str, float] = {}
    answers: dict[str, list[tuple[float, bytes]]] = {}
    if args.collect:
        with open(args.collect, encoding="utf-8") as fh:
            submitted = dict.fromkeys(json.load(fh)["correlation_ids"], 0.0)
    start = time.monotonic()

    def on_reply(ch, method, properties, body):
        answers.setdefault(properties.correlation_id, []).append((time.monotonic(), body))
        ch.basic_ack(method.delivery_tag)

    if not args.no_wait:
        # Consume before publishing: no answer can arrive before there is a reader.
        channel.basic_consume(reply_to, on_reply)

    if not args.collect:
        # One transaction for the whole batch: tx.commit returns once the broker has every
        # request (persisted to disk, as a publisher confirm would say), in one disk sync
        # instead of one confirm round trip per message. Its own channel: acks of replies
        # stay outside the transaction.
        publisher = connection.channel()
        publisher.tx_select()
        returned: list[str] = []
        publisher.add_on_return_callback(lambda _ch, _m, props, _b: returned.append(props.correlation_id))
        body = build_body(args)
        for _i in range(args.count):
            cid = str(uuid.uuid4())
            props = pika.BasicProperties(
                content_type="application/json",
                correlation_id=cid,
                reply_to=reply_to,
                delivery_mode=2,
                timestamp=int(time.time()),
            )
            publisher.basic_publish("", settings["queue"], body, props, mandatory=True)
            submitted[cid] = time.monotonic()
        publisher.tx_commit()
        # A basic.return (no such queue) precedes tx.commit-ok on the channel: dispatch it now.
        connection.process_data_events(time_limit=0)
        if returned:
            connection.close()
            return {
                "failed": True,
                "msg": f"queue {settings['queue']!r} does not exist in vhost {settings['vhost']!r}: "
                "apply slm.edge.prompt_queue (or start the worker) first",
            }, EXIT_CONNECT
        publish_s = time.monotonic() - start
        if args.no_wait:
            connection.close()
            return {
                "submitted": len(submitted),
                "reply_queue": reply_to,
                "publish_s": round(publish_s, 4),
                "correlation_ids": list(submitted),
            }, EXIT_OK

    deadline = time.monotonic() + args.timeout
    # Stop when every id has an answer; then linger briefly to count duplicates.
    while time.monotonic() < deadline:
        if all(answers.get(cid) for cid in submitted):
            break
        connection.process_data_events(time_limit=0.2)
    wall = time.monotonic() - start
    if args.linger > 0:
        connection.process_data_events(time_limit=args.linger)
    connection.close()
    out, code = report(submitted, answers, wall, args.show)
    out["reply_queue"] = reply_to
    return out, code


# ----------------------------------------------------------------------------
# Straight to llama-server (comparison)
# ----------------------------------------------------------------------------


def direct(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    body = build_body(args)
    url = args.direct.rstrip("/") + "/v1/chat/completions"
    headers = {"Content-Type": "application/json"}
    if args.api_key:
        headers["Authorization"] = f"Bearer {args.api_key}"

    def one(_index: int) -> tuple[str, float, float, bytes]:
        cid = str(uuid.uuid4())
        t0 = time.monotonic()
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (http(s) URL)
        try:
            with urllib.request.urlopen(req, timeout=args.timeout) as resp:  # noqa: S310
                data = resp.read()
        except urllib.error.HTTPError as exc:
            data = json.dumps({"error": {"message": f"HTTP {exc.code}"}}).encode()
        except OSError as exc:
            data = json.dumps({"error": {"message": repr(exc)}}).encode()
        return cid, t0, time.monotonic(), data

    start = time.monotonic()
    submitted: dict[str, float] = {}
    answers: dict[str, list[tuple[float, bytes]]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(args.count, args.concurrency))) as pool:
        for cid, t0, t1, data in pool.map(one, range(args.count)):
            submitted[cid] = t0
            answers[cid] = [(t1, data)]
    out, code = report(submitted, answers, time.monotonic() - start, args.show)
    out["direct"] = args.direct
    return out, code


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n", maxsplit=1)[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--config", help="JSON file with amqp {host, port, vhost, user, password, tls, ca_file} and queue")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--vhost")
    p.add_argument("--user")
    p.add_argument("--password", help="better: SLM_QUEUE_PASSWORD in the environment, or the config file")
    p.add_argument("--tls", action="store_true", help="connect with TLS (amqps)")
    p.add_argument("--ca-file", help="CA bundle that signed the broker's certificate")
    p.add_argument("--queue", help="request queue (default from the config, else slm.chat)")
    p.add_argument("--system", default="", help="system message")
    p.add_argument("--prompt", default="Hello", help="user message")
    p.add_argument("--body-file", help="send this file as the request body instead (raw, not checked)")
    p.add_argument("--model", default="", help="model field of the request")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--count", type=int, default=1, help="submit this many copies at once and wait for all")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for all answers")
    p.add_argument("--linger", type=float, default=0.0, help="seconds to keep listening for duplicates at the end")
    p.add_argument("--reply-queue", help="durable named reply queue (default: exclusive, auto-delete, server-named)")
    p.add_argument("--no-wait", action="store_true", help="only publish; print the correlation ids")
    p.add_argument("--collect", help="only wait for the answers of the ids in this file (output of --no-wait)")
    p.add_argument("--show", type=int, default=5, help="answers to print (-1: all)")
    p.add_argument("--direct", help="send straight to this llama-server base URL instead of the queue")
    p.add_argument("--concurrency", type=int, default=256, help="--direct: requests in flight at once")
    p.add_argument("--api-key", default=os.environ.get("LLAMA_API_KEY", ""), help="--direct: llama-server API key")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error("--count must be >= 1")
    if (args.collect or args.no_wait) and not args.reply_queue:
        p.error("--collect and --no-wait need --reply-queue (an exclusive reply queue dies with this client)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # pika logs connection failures itself; the client reports them once, clearly.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    out, code = direct(args) if args.direct else via_queue(args)
    print(json.dumps(out, indent=1))
    if code == EXIT_CONNECT:
        print(out.get("msg", ""), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
