"""The runbook's llama-server against the collection's defaults, side by side on one host, in one command.

    python3 tests/gpu/side_by_side.py --src LLAMA_CPP_TREE [--rounds 3] [--concurrency 1 16]
                                      [--docs docs/benchmarks.md] [--work /tmp/slm-gpu]

Made for a lent GPU machine, which has CUDA, CMake, ninja, torch and transformers but no
systemd, no Ansible and no network; it runs on a CPU host too (``--shape smollm2-mini``), which
is how CI-less changes to it are tried. In order, each step printed with its time:

1. builds llama-server, llama-bench and llama-quantize from ``--src`` with the llama_cpp role's
   base flags (CUDA for the GPUs nvidia-smi lists, their architectures only), or reuses the
   build of the same source and flags under ``--work``;
2. makes the SmolLM2-1.7B-shaped random Llama with the fixed tokenizer (tests/gpu/make_model.py)
   and converts it to an f16 GGUF with the tree's converter (reused when present);
3. times it with llama-bench (prompt and generation) and reads the roofline input: the GPU's
   bandwidth from slm.edge.gpu_info's table, or on a CPU host slm.edge.memory_bandwidth_info's
   copy probe;
4. serves each of the benchmark role's configurations (roles/benchmark/defaults: the runbook's
   command line and the collection's defaults) as the llama_server role would: its defaults,
   the configuration's overrides, slm.edge.replica_layout and slm.edge.slot_plan for the model
   and this host's memory, and the role's own argv.j2 template;
5. loads them A, B, A, B, ... with slm.edge.llm_benchmark's load generator at the same levels,
   then writes the benchmark role's report (bench_report.py, the B/A medians with their spread)
   to ``--work``/report.md, into ``--docs`` between the side-by-side markers, and to $OUT when set.

Load goes to 127.0.0.1 only, bounded in requests and seconds per level.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
from pathlib import Path

import yaml
from jinja2 import Environment, StrictUndefined

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["llama-server", "llama-bench", "llama-quantize"]
# The report's place in --docs, one per kind of host, so a CPU try does not replace the GPU figures.
BEGIN = "<!-- side-by-side {kind}: begin (tests/gpu/side_by_side.py writes this section) -->"
END = "<!-- side-by-side {kind}: end -->"
T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {message}", flush=True)


def collection():
    """Make ``ansible_collections.slm.edge`` importable from this checkout (Ansible need not be installed)."""
    base = Path(tempfile.mkdtemp(prefix="slm-collection-"))
    (base / "ansible_collections" / "slm").mkdir(parents=True)
    (base / "ansible_collections" / "slm" / "edge").symlink_to(ROOT)
    sys.path.insert(0, str(base))
    try:
        import ansible.errors  # noqa: PLC0415
        import ansible.module_utils.basic  # noqa: F401, PLC0415
    except ImportError:
        # The plugins import these two names at module level; nothing used here calls them.
        for name in ("ansible", "ansible.module_utils"):
            sys.modules[name] = types.ModuleType(name)
        basic = sys.modules["ansible.module_utils.basic"] = types.ModuleType("ansible.module_utils.basic")
        basic.AnsibleModule = None
        errors = sys.modules["ansible.errors"] = types.ModuleType("ansible.errors")
        errors.AnsibleFilterError = type("AnsibleFilterError", (ValueError,), {})


def plugin(relative: str):
    name = "ansible_collections.slm.edge.plugins." + relative.replace("/", ".")
    return importlib.import_module(name)


class Shim:
    """What slm.edge.gpu_info's gather() asks of its AnsibleModule."""

    params = {"nvidia_smi_path": None}

    @staticmethod
    def get_bin_path(name, opt_dirs=()):
        return shutil.which(name) or shutil.which(name, path=os.pathsep.join(opt_dirs))

    @staticmethod
    def run_command(argv):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr

    @staticmethod
    def warn(message):
        say("warning: " + message)


def physical_cores() -> int:
    """Cores as Ansible's facts count them (processor_cores x processor_count), else the CPUs."""
    pairs = set()
    physical = core = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _sep, value = (part.strip() for part in line.partition(":"))
            if key == "physical id":
                physical = value
            elif key == "core id":
                core = value
            elif not key and physical is not None and core is not None:
                pairs.add((physical, core))
                physical = core = None
    if physical is not None and core is not None:
        pairs.add((physical, core))
    return len(pairs) or os.cpu_count() or 1


def host_facts() -> dict:
    """What the benchmark role's run document says of the host, read without Ansible's facts."""
    release = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _sep, value = line.partition("=")
            release[key] = value.strip('"')
    model_name = None
    with contextlib.suppress(OSError):
        model_name = next(
            (
                line.partition(":")[2].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            None,
        )
    return {
        "hostname": os.uname().nodename,
        "distribution": release.get("NAME"),
        "distribution_version": release.get("VERSION_ID"),
        "kernel": os.uname().release,
        "architecture": os.uname().machine,
        "processor_model": model_name,
        "processor_vcpus": os.cpu_count(),
        "memtotal_mb": memtotal_mib(),
    }


def llama_cpp_version(bins: Path) -> list[str]:
    """The version lines of ``llama-server --version``, as the benchmark role keeps them."""
    done = subprocess.run([str(bins / "llama-server"), "--version"], capture_output=True, text=True, check=False)
    lines = (done.stdout + "\n" + done.stderr).splitlines()
    return [line for line in lines if line.startswith(("version", "built with"))]


def memtotal_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    say("+ " + " ".join(str(a) for a in argv))
    return subprocess.run([str(a) for a in argv], check=True, **kwargs)


def build(src: Path, work: Path, gpu: dict, jobs: int) -> Path:
    """llama.cpp's binaries, built once per source and flags (the role's base flags, CUDA for these GPUs)."""
    role_vars = yaml.safe_load((ROOT / "roles" / "llama_cpp" / "vars" / "main.yml").read_text())
    flags = list(role_vars["__llama_cpp_base_flags"])
    launcher = ["ccache"] if shutil.which("ccache") else []  # as the role with llama_cpp_ccache
    flags += [f"-DCMAKE_{lang}_COMPILER_LAUNCHER=ccache" for lang in launcher and ["C", "CXX"]]
    if gpu["present"]:
        nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
        flags += [
            "-DGGML_CUDA=ON",
            f"-DCMAKE_CUDA_ARCHITECTURES={gpu['cuda_architectures']}",
            f"-DCMAKE_CUDA_COMPILER={nvcc}",
        ]
        flags += [f"-DCMAKE_CUDA_COMPILER_LAUNCHER={tool}" for tool in launcher]
    else:
        flags += ["-DGGML_CUDA=OFF"]
    marker = src / "CMakeLists.txt"
    key = hashlib.sha256(json.dumps([str(src.resolve()), marker.stat().st_mtime_ns, flags, TARGETS]).encode())
    out = work / f"build-{key.hexdigest()[:10]}"
    stamp = out / ".slm-build.json"
    if stamp.exists():
        say(f"llama.cpp: reusing {out} (same source and flags)")
        return out / "bin"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    started = time.monotonic()
    run(["cmake", "-S", src, "-B", out, *generator, *flags], stdout=subprocess.DEVNULL)
    run(["cmake", "--build", out, "--target", *TARGETS, "-j", str(jobs)], stdout=subprocess.DEVNULL)
    seconds = round(time.monotonic() - started, 1)
    stamp.write_text(json.dumps({"flags": flags, "targets": TARGETS, "build_s": seconds}) + "\n")
    say(f"llama.cpp: built in {seconds} s")
    return out / "bin"


def model(args, work: Path) -> Path:
    """The generated model as an f16 GGUF, made and converted once."""
    gguf = work / f"{args.shape}-f16.gguf"
    if gguf.exists():
        say(f"model: reusing {gguf}")
        return gguf
    hf = work / f"{args.shape}-hf"
    if not (hf / "config.json").exists():
        run([args.python, ROOT / "tests" / "gpu" / "make_model.py", hf, "--shape", args.shape])
    partial = gguf.with_name(f".{gguf.name}.partial")
    run(
        [args.python, args.src / "convert_hf_to_gguf.py", "--outtype", "f16", "--outfile", partial, hf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    partial.rename(gguf)
    return gguf


def llama_bench(bins: Path, gguf: Path, offload: bool) -> dict:
    argv = [str(bins / "llama-bench"), "-m", str(gguf), "-p", "512", "-n", "128", "-r", "3"]
    argv += ["-ngl", "99" if offload else "0", "-o", "json"]
    records = json.loads(run(argv, capture_output=True, text=True).stdout)
    pp = [r for r in records if r.get("n_prompt") and not r.get("n_gen")]
    tg = [r for r in records if r.get("n_gen") and not r.get("n_prompt")]
    return {
        "argv": argv,
        "prompt_tps": pp[0]["avg_ts"] if pp else None,
        "prompt_tps_stddev": pp[0]["stddev_ts"] if pp else None,
        "gen_tps": tg[0]["avg_ts"] if tg else None,
        "gen_tps_stddev": tg[0]["stddev_ts"] if tg else None,
        "records": records,
    }


def bandwidth(gpu: dict, given: float) -> tuple[float | None, str | None]:
    if given:
        return given, "--bandwidth"
    if gpu["present"]:
        figure = gpu["gpus"][0].get("memory_bandwidth_gbps")
        return (float(figure), "slm.edge.gpu_info, one GPU") if figure else (None, None)
    probe = plugin("modules/memory_bandwidth_info")
    processes = min(len(os.sched_getaffinity(0)), probe.MAX_PROCESSES)
    figure = max(probe.trial(processes, 64 * 1024 * 1024, 0.5) for _trial in range(3))
    return round(figure, 2), f"slm.edge.memory_bandwidth_info: memcpy of a 64 MiB buffer in {processes} processes"


def argv_for(configuration: dict, index: int, *, bins: Path, gguf_path: Path, gguf: dict, gpu: dict, port: int):
    """The llama-server argv of a benchmark configuration, as the llama_server role renders it."""
    role = ROOT / "roles" / "llama_server"
    values = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    values.update(
        llama_server_bin=str(bins / "llama-server"),
        llama_server_model_path=str(gguf_path),
        llama_server_model_alias="bench",
        llama_server_model_draft_path="",
        llama_server_port=port + 10 * index,
    )
    values.update(configuration.get("llama_server") or {})
    gpus = gpu["gpus"] if gpu["present"] else []
    offload = bool(gpus) and int(values["llama_server_gpu_layers"]) != 0
    model_mib = -(-gguf["size_bytes"] // 1048576)
    replicas = plugin("filter/replicas")
    slots = plugin("filter/slots")
    layout = replicas.replica_layout(
        gpus,
        model_mib,
        mode=values["llama_server_replica_mode"],
        headroom_mib=int(values["llama_server_gpu_headroom_mib"]),
        port=int(values["llama_server_port"]),
        gpu_layers=int(values["llama_server_gpu_layers"]),
    )
    plan = slots.slot_plan(
        gguf,
        parallel=values["llama_server_parallel"],
        ctx_size=values["llama_server_ctx_size"],
        slot_ctx=values["llama_server_slot_ctx"],
        prompt_tokens=int(values["llama_server_prompt_tokens"]),
        n_predict=int(values["llama_server_n_predict"]),
        memory_mib=layout["have_mib"] if offload else memtotal_mib(),
        model_mib=model_mib,
        headroom_mib=int(values["llama_server_gpu_headroom_mib" if offload else "llama_server_ram_headroom_mib"]),
        cache_type_k=values["llama_server_cache_type_k"],
        cache_type_v=values["llama_server_cache_type_v"],
        draft=None,
        max_parallel=int(values["llama_server_max_parallel"]) or (16 if offload else 8),
        where="GPU memory per replica" if offload else "host RAM",
    )
    threads = int(values["llama_server_threads"]) or physical_cores()
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=False)
    env.filters["bool"] = lambda value: str(value).lower() in ("1", "true", "yes", "on")
    env.filters["to_json"] = json.dumps
    template = env.from_string((role / "templates" / "argv.j2").read_text())
    instances = []
    for item in layout["instances"]:
        argv = json.loads(
            template.render(
                **values,
                item=item,
                __llama_server_threads=threads,
                __llama_server_plan=plan,
                __llama_server_gpus=gpus if offload else [],
                __llama_server_api_keys_all=[],
                __llama_server_tls_enabled=False,
            )
        )
        instances.append({"argv": argv, "port": item["port"], "gpu": item["gpu"]})
    return instances, plan


def wait_healthy(port: int, process: subprocess.Popen, log: Path, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"llama-server on port {port} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        time.sleep(0.5)
    raise SystemExit(f"llama-server on port {port} not healthy after {seconds} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def serving(instances: list[dict], logs: Path, label: str):
    processes = []
    try:
        for number, instance in enumerate(instances):
            log = logs / f"{label}-{number}.log"
            env = dict(os.environ)
            if instance["gpu"]:
                env["CUDA_VISIBLE_DEVICES"] = instance["gpu"]
            with log.open("w") as handle:
                process = subprocess.Popen(instance["argv"], stdout=handle, stderr=subprocess.STDOUT, env=env)
            processes.append(process)
            wait_healthy(instance["port"], process, log)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def load(args, label: str, instances: list[dict]) -> dict:
    bench = plugin("modules/llm_benchmark")
    # The module's own defaults, then what this comparison sets.
    params = {name: spec.get("default") for name, spec in bench.ARGUMENT_SPEC.items()}
    params.update(
        {
            "endpoints": [f"http://127.0.0.1:{i['port']}" for i in instances],
            "workload": args.workload,
            "concurrency": args.concurrency,
            "requests_per_level": args.requests,
            "max_seconds_per_level": args.seconds,
            "chatbot_max_tokens": args.max_tokens,
            "summarization_max_tokens": args.max_tokens,
            "cache_prompt": False,
            "ignore_eos": True,
            "label": label,
            "include_requests": False,
        }
    )
    results = bench.run_benchmark(params)
    if results["totals"]["success"] == 0:
        raise SystemExit(f"{label}: no request succeeded")
    return results


def write_docs(docs: Path, report: str, kind: str) -> None:
    text = docs.read_text() if docs.exists() else ""
    body = report.replace("\n# ", "\n### ").replace("\n## ", "\n#### ")
    body = "### " + body[2:] if body.startswith("# ") else body
    begin, end = BEGIN.format(kind=kind), END.format(kind=kind)
    section = f"{begin}\n{body.strip()}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    docs.write_text(text)
    say(f"report written into {docs}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True, help="the llama.cpp source tree (converter and CMake)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/slm-gpu"), help="build, model and results")
    parser.add_argument("--bin-dir", type=Path, help="use these llama.cpp binaries instead of building")
    parser.add_argument("--shape", choices=["smollm2", "smollm2-135m", "smollm2-mini"], default="smollm2")
    parser.add_argument("--python", default=sys.executable, help="a Python with torch, transformers, sentencepiece")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--workload", choices=["chatbot", "summarization", "both"], default="chatbot")
    parser.add_argument("--requests", type=int, default=32, help="requests per level")
    parser.add_argument("--seconds", type=float, default=60, help="most seconds per level")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--bandwidth", type=float, default=0, help="roofline GB/s (default: the GPU's, or a probe)")
    parser.add_argument("--port", type=int, default=18400)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md", help="'' to leave docs alone")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    collection()

    gpu = plugin("modules/gpu_info").gather(Shim())
    say(f"GPU: {', '.join(g['name'] for g in gpu['gpus']) if gpu['present'] else 'none (' + str(gpu['reason']) + ')'}")
    bins = args.bin_dir or build(args.src, args.work, gpu, args.jobs)
    gguf_path = model(args, args.work)
    gguf = plugin("module_utils/gguf").summarize(plugin("module_utils/gguf").read_gguf(str(gguf_path)))
    say(f"model: {gguf_path} ({gguf['size_bytes'] / 1e9:.2f} GB, {gguf.get('parameter_count')} parameters)")
    raw = llama_bench(bins, gguf_path, gpu["present"])
    gbps, source = bandwidth(gpu, args.bandwidth)
    say(
        f"llama-bench: pp512 {raw['prompt_tps']:.1f} tok/s, tg128 {raw['gen_tps']:.1f} tok/s; "
        f"roofline input {gbps} GB/s"
    )

    configurations = yaml.safe_load((ROOT / "roles" / "benchmark" / "defaults" / "main.yml").read_text())[
        "benchmark_configurations"
    ]
    plans = []
    for index, configuration in enumerate(configurations):
        instances, plan = argv_for(
            configuration, index, bins=bins, gguf_path=gguf_path, gguf=gguf, gpu=gpu, port=args.port
        )
        plans.append((configuration, instances))
        say(f"{configuration['label']}: -np {plan['parallel']} -c {plan['ctx_size']} ({'; '.join(plan['reasons'])})")

    logs = args.work / "logs"
    logs.mkdir(exist_ok=True)
    done = []
    for number in range(args.rounds):
        for configuration, instances in plans:
            label = configuration["label"]
            with serving(instances, logs, f"{label}-r{number + 1}"):
                say(f"round {number + 1}/{args.rounds}: loading {label}")
                results = load(args, label, instances)
            for level in results["levels"]:
                say(
                    f"  {label} c{level['concurrency']}: {level['aggregate_output_tps']:.1f} tok/s aggregate, "
                    f"{level['success']}/{level['requests']} answered"
                )
            done.append(results)

    results_dir = args.work / "results"
    shutil.rmtree(results_dir, ignore_errors=True)
    results_dir.mkdir()
    files = []
    for number, results in enumerate(done):
        path = results_dir / f"{number:02d}-{results['config']['label']}.json"
        path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        files.append(str(path))
    limit = round(gbps * 1e9 / gguf["size_bytes"], 3) if gbps else None
    context = {
        "schema_version": 1,
        "host": os.uname().nodename,
        "host_facts": host_facts(),
        "llama_cpp": {
            "bin_dir": str(bins),
            "server_bin": str(bins / "llama-server"),
            "version": llama_cpp_version(bins),
        },
        "model": {"path": str(gguf_path), "gguf": gguf},
        "gpu": gpu,
        "roofline": {
            "memory_bandwidth_gbps": gbps,
            "source": source,
            "model_bytes": gguf["size_bytes"],
            "limit_tps": limit,
        },
        "llama_bench": raw,
        "load": {
            "workloads": ["chatbot", "summarization"] if args.workload == "both" else [args.workload],
            "concurrency": args.concurrency,
            "requests_per_level": args.requests,
            "max_seconds_per_level": args.seconds,
            "chatbot_max_tokens": args.max_tokens,
            "summarization_max_tokens": args.max_tokens,
            "rounds": args.rounds,
        },
        "configurations": [
            {
                "label": c["label"],
                "description": c.get("description"),
                "units": [f"process {n}" for n in range(len(i))],
                "llama_server_args": [" ".join(x["argv"]) for x in i],
            }
            for c, i in plans
        ],
    }
    (args.work / "run.json").write_text(json.dumps(context, indent=2) + "\n")
    what = "GPU" if gpu["present"] else "CPU"
    title = (
        f"{what} side by side: {args.shape}-shaped Llama (f16), the runbook's command line vs the collection's defaults"
    )
    report_script = ROOT / "roles" / "benchmark" / "files" / "bench_report.py"
    report = args.work / "report.md"
    run([sys.executable, report_script, "--title", title, "--context", args.work / "run.json", "-o", report, *files])
    text = report.read_text()
    print(text)
    if str(args.docs) not in ("", "."):
        write_docs(args.docs, text, what)
    out = os.environ.get("OUT")
    if out:
        for path in (report, args.work / "run.json"):
            shutil.copy(path, Path(out) / path.name)
        Path(out, "results.json").write_text(json.dumps(done) + "\n")
        if args.docs and Path(args.docs).exists():
            shutil.copy(args.docs, Path(out) / "benchmarks.md")
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
