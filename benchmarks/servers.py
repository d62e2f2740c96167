"""Start and stop the servers under test, and read their CPU time and memory.

Why process trees: every target runs a master plus worker processes (gunicorn,
uvicorn), so a number read from one pid would miss most of the work. Each
server is started in its own session (``start_new_session``); its tree is every
process of that session plus every descendant of its leader, read from /proc.

Why this much care about stopping: a benchmark that leaves a 1 GB LiteLLM or a
bound port behind poisons the next run. Every server is registered, killed by
process group at the end (``stop_all``, also run at exit), and asked by the
kernel (``PR_SET_PDEATHSIG``) to die if the runner itself is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
LITELLM_VERSION = "1.108.7"  # known-good; 1.82.7 and 1.82.8 on PyPI were compromised
BAD_LITELLM_VERSIONS = {"1.82.7", "1.82.8"}
_RUNNING: list[Server] = []


class SkipTarget(Exception):
    """The target cannot be measured on this machine (not built yet, install failed)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = field 3, state)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def tree_pids(root: int) -> list[int]:
    """The root, its descendants, and every process in the root's session."""
    parent: dict[int, int] = {}
    session: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st:
                parent[int(entry)], session[int(entry)] = int(st[1]), int(st[3])
    found = {p for p, sid in session.items() if sid == root}
    if root in parent:
        found.add(root)
    frontier = [root]
    while frontier:
        cur = frontier.pop()
        for p, pp in parent.items():
            if pp == cur and p not in found:
                found.add(p)
                frontier.append(p)
    return sorted(found)


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime (+ reaped children's cutime+cstime, so exited workers still count)."""
    ticks = 0
    for pid in pids:
        st = _stat(pid)
        if st:
            ticks += sum(int(x) for x in st[11:15])
    return ticks / CLK_TCK


def memory_bytes(pids: list[int]) -> dict[str, int]:
    """Summed RSS (counts pages shared by forked workers once per process) and PSS (fair share)."""
    rss = pss = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
                    break
    return {"rss": rss, "pss": pss, "procs": len(pids)}


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine spent in user and system mode (from /proc/stat).

    Compared with what our own processes used, it tells how busy everything else was.
    Interrupt time is left out: loopback traffic is handled in softirq, charged to no process.
    """
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system = fields[:3]
    return (user + nice + system) / CLK_TCK


def _die_with_parent() -> None:
    """Run in the child before exec: SIGTERM it if the runner dies (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return tree_pids(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def memory(self) -> dict[str, int]:
        return memory_bytes(self.pids())

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 8.0) -> None:
        """SIGTERM the process group (and any stray tree member), SIGKILL what is left."""
        pids = self.pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and (self.alive() or any(_stat(p) for p in pids)):
                time.sleep(0.1)
                pids = [p for p in pids if _stat(p) and _stat(p)[0] != "Z"]
            if not self.alive() and not pids:
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)
        if self in _RUNNING:
            _RUNNING.remove(self)


def start(name: str, cmd: list[str], port: int, env: dict[str, str], log_dir: Path, cwd: Path) -> Server:
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 -- the child owns it for its lifetime
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    log.close()
    server = Server(name, port, proc, log_path)
    _RUNNING.append(server)
    return server


def stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


atexit.register(stop_all)


def base_env() -> dict[str, str]:
    """The runner's environment without anything that could send a target elsewhere."""
    drop = ("DATABASE_URL", "REDIS_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    env = {k: v for k, v in os.environ.items() if k.upper() not in drop and not k.startswith("TOLLGATE_")}
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"})
    return env


def http_request(port: int, method: str, path: str, body: dict | None = None, headers=None, timeout=5.0):
    """One blocking request on a fresh connection: (status, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(server: Server, probe: Callable[[], bool], timeout: float) -> float:
    """Poll ``probe`` until it is true; seconds it took. Raises if the server dies or times out."""
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < timeout:
        if not server.alive():
            raise RuntimeError(
                f"{server.name} exited with code {server.proc.returncode} during start-up:\n{server.log_tail()}"
            )
        try:
            if probe():
                return time.monotonic() - t0
        except (OSError, http.client.HTTPException) as exc:
            last = repr(exc)
        time.sleep(0.3)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f}s ({last}):\n{server.log_tail()}")


def wait_idle(server: Server, timeout: float = 60.0, window: float = 1.0, max_cores: float = 0.05) -> float:
    """Wait until the tree uses under ``max_cores`` of CPU; seconds it took.

    Why: the first answer comes from the first worker that is up, while the
    others may still be importing (LiteLLM's second worker boots ~1 s later);
    measuring then would charge start-up to the first load point.
    """
    t0 = time.monotonic()
    prev = server.cpu()
    while time.monotonic() - t0 < timeout:
        time.sleep(window)
        cur = server.cpu()
        if cur - prev <= max_cores * window:
            break
        prev = cur
    return time.monotonic() - t0


def start_upstream(log_dir: Path, chunks: int, gap_ms: float) -> Server:
    port = free_port()
    cmd = [sys.executable, str(HERE / "upstream.py"), "--port", str(port)]
    cmd += ["--chunks", str(chunks), "--gap-ms", str(gap_ms)]
    server = start("upstream", cmd, port, base_env(), log_dir, HERE)
    wait_ready(server, lambda: http_request(port, "GET", "/health")[0] == 200, 15)
    return server


def configure_upstream(upstream: Server, chunks: int, gap_ms: float) -> None:
    status, body = http_request(upstream.port, "POST", "/_bench/config", {"chunks": chunks, "gap_ms": gap_ms})
    if status != 200:
        raise RuntimeError(f"upstream refused config: {status} {body!r}")


def write_config(path: Path, upstream_port: int, master_key: str) -> Path:
    """The LiteLLM-format config both proxies read (JSON-style flow YAML, no yaml dependency)."""
    path.write_text(
        "model_list:\n"
        '  - model_name: "bench-model"\n'
        "    litellm_params:\n"
        '      model: "mistral/mistral-small-latest"\n'
        f'      api_base: "http://127.0.0.1:{upstream_port}/v1"\n'
        '      api_key: "fake"\n'
        "general_settings:\n"
        f'  master_key: "{master_key}"\n'
    )
    return path


def chat_probe(port: int, master_key: str) -> Callable[[], bool]:
    body = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
    headers = {"Authorization": f"Bearer {master_key}"}
    return lambda: http_request(port, "POST", "/v1/chat/completions", body, headers)[0] == 200


def generate_key(server: Server, master_key: str, fields: dict) -> str:
    """Make a virtual key on a running Tollgate through its management API; return the key."""
    import urllib.request

    request = urllib.request.Request(
        f"{server.base_url}/key/generate",
        data=json.dumps(fields).encode(),
        headers={"Authorization": f"Bearer {master_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # 127.0.0.1 only
        return json.loads(answer.read())["key"]


def start_tollgate(
    log_dir: Path, config: Path, master_key: str, workers: int, timeout: float, redis_url: str = ""
) -> Server:
    command = PROJECT / "proxy" / "management" / "commands" / "runproxy.py"
    if not command.exists():
        raise SkipTarget(f"{command.relative_to(PROJECT)} does not exist yet (runproxy not written)")
    python = PROJECT / ".venv" / "bin" / "python"
    python_s = str(python) if python.exists() else sys.executable
    port = free_port()
    env = base_env()
    env.update({"DATABASE_URL": f"sqlite:///{log_dir}/bench.db", "TOLLGATE_MASTER_KEY": master_key})
    env.pop("REDIS_URL", None)
    if redis_url:  # counters, limits and the key cache's generation in Redis, as in production
        env["REDIS_URL"] = redis_url
    cmd = [python_s, "manage.py", "runproxy", "--config", str(config), "--port", str(port)]
    cmd += ["--workers", str(workers)]
    if '"--host"' in command.read_text():
        cmd += ["--host", "127.0.0.1"]  # no need to listen beyond loopback
    server = start("tollgate", cmd, port, env, log_dir, PROJECT)
    ready = wait_ready(server, chat_probe(port, master_key), timeout)
    server.extra["startup_s"] = round(ready + wait_idle(server), 2)
    return server


def ensure_litellm(venv: Path, log_dir: Path, allow_install: bool, timeout: float = 1200) -> Path:
    """The ``litellm`` CLI in its own virtualenv, installed on first use."""
    exe = venv / "bin" / "litellm"
    pip = venv / "bin" / "pip"
    if exe.exists():
        out = subprocess.run([pip, "show", "litellm"], capture_output=True, text=True, timeout=60).stdout
        version = next((ln.split()[-1] for ln in out.splitlines() if ln.startswith("Version:")), "?")
        if version in BAD_LITELLM_VERSIONS:
            raise SkipTarget(f"{venv} holds compromised litellm {version}: delete it and rerun")
        return exe
    if not allow_install:
        raise SkipTarget(f"{exe} missing and --no-install given")
    print(f"[litellm] installing litellm[proxy]=={LITELLM_VERSION} into {venv} (a few minutes) ...", flush=True)
    log = log_dir / "litellm-install.log"
    try:
        with open(log, "wb") as out:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out, timeout=300)
            subprocess.run(
                [str(pip), "install", "--disable-pip-version-check", f"litellm[proxy]=={LITELLM_VERSION}"],
                check=True,
                stdout=out,
                stderr=out,
                timeout=timeout,
            )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:]) if log.exists() else ""
        raise SkipTarget(f"litellm install failed ({exc}); see {log}\n{tail}") from exc
    if not exe.exists():
        raise SkipTarget(f"litellm installed but {exe} is missing")
    return exe


def start_litellm(exe: Path, log_dir: Path, config: Path, master_key: str, workers: int, timeout: float) -> Server:
    port = free_port()
    env = base_env()
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # else it fetches the cost map from the internet
            "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
    )
    cmd = [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--num_workers", str(workers)]
    server = start("litellm", cmd, port, env, log_dir, log_dir)
    ready = wait_ready(server, chat_probe(port, master_key), timeout)
    server.extra["startup_s"] = round(ready + wait_idle(server), 2)
    return server
