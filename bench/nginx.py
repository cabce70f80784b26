"""A private nginx on 127.0.0.1 serving a folder of static files, for bench/scale.py.

`find_or_install()` locates Debian's nginx binary, or installs it (`apt-get update`, then
`apt-get install nginx-light`; as root only). `Nginx(root, tmp)` writes its own config file
with its pid file, logs and temporary folders in `tmp`; its workers run as the current user
(`user root` when root, so they can read the benchmark's private folder). It listens on a free
port of 127.0.0.1 only, runs in the foreground (`daemon off`) as a child in its own session (so
Ctrl-C reaches the benchmark, which stops it) and is stopped by pid. Static files give ETag,
Last-Modified and 304 answers to conditional GETs; `verify_conditional` proves it before
anything is timed. `cpu_seconds()` reads the CPU time of the master and its workers (/proc).
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


def find_or_install(log) -> str:
    found = shutil.which("nginx") or next((c for c in CANDIDATES if os.access(c, os.X_OK)), None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("nginx not found: install it (Debian: apt-get install nginx-light)")
    log("nginx not found: apt-get update && apt-get install -y nginx-light")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", "nginx-light"]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()[-500:]}")
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        raise RuntimeError("apt-get installed nginx-light but no nginx binary was found")
    return found


def version(binary: str) -> str:
    r = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
    return (r.stderr or r.stdout).strip().removeprefix("nginx version: ").removeprefix("nginx/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return -1


class Nginx:
    def __init__(self, binary: str, root: Path, tmp: Path, workers: str = "auto",
                 access_log: Path | None = None) -> None:
        self.access_log = access_log  # None: off; else "$msec $status $uri" per request
        self.binary, self.root, self.tmp, self.workers = binary, root, tmp, workers
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def _config(self) -> Path:
        t = self.tmp
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (t / d).mkdir(exist_ok=True)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        conf = t / "nginx.conf"
        log_fmt = ("access_log off;" if self.access_log is None else
                   "log_format crier '$msec $status $uri';\n    "
                   f"access_log {self.access_log} crier buffer=64k flush=1s;")
        conf.write_text(f"""{user}daemon off;
worker_processes {self.workers};
pid {t}/nginx.pid;
error_log {t}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{ application/rss+xml rss; }}
    default_type application/octet-stream;
    {log_fmt}
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    client_body_temp_path {t}/client_body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        server_name localhost;
        root {self.root};
        location / {{ try_files $uri =404; }}
    }}
}}
""")
        return conf

    def start(self, timeout: float = 15) -> None:
        self.port = free_port()
        conf = self._config()
        self.proc = subprocess.Popen(
            [self.binary, "-e", str(self.tmp / "error.log"), "-p", str(self.tmp), "-c", str(conf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = (self.tmp / "error.log").read_text() if (self.tmp / "error.log").exists() \
                    else ""
                raise RuntimeError(f"nginx exited at start: {err.strip()} {log.strip()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on 127.0.0.1:{self.port} within {timeout} s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        master = self.proc.pid
        kids = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == master]
        return [master, *kids]

    def cpu_seconds(self) -> float:
        return sum(_stat_cpu(p) for p in self.pids())

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, int]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, len(body)
        finally:
            c.close()

    def verify_conditional(self, path: str) -> str:
        """200 with ETag and Last-Modified, then 304 for each validator; else RuntimeError."""
        status, h, size = self.get(path)
        if status != 200 or "etag" not in h or "last-modified" not in h:
            raise RuntimeError(f"nginx: GET {path} gave {status} {h}")
        checks = {"If-None-Match": h["etag"], "If-Modified-Since": h["last-modified"]}
        for name, value in checks.items():
            s2, _, body2 = self.get(path, {name: value})
            if s2 != 304 or body2:
                raise RuntimeError(f"nginx: conditional GET {path} with {name} gave {s2}, not 304")
        return (f"200 ({size} bytes, ETag {h['etag']}) then 304 for If-None-Match and "
                "If-Modified-Since")
