"""Gunicorn settings for running diversion in production.

    gunicorn -c infra/gunicorn.conf.py "diversion:create_app()"

Every value can be changed from the environment, so the container image, a
plain VM and a quick check on a laptop all use this one file:

    PORT / BIND                  where to listen (default 0.0.0.0:8000)
    WEB_CONCURRENCY              worker processes (default: 2 x cores + 1,
                                 at most GUNICORN_MAX_WORKERS, default 8)
    GUNICORN_THREADS             threads per worker (default 1: sync worker)
    GUNICORN_TIMEOUT             seconds before a silent worker is killed (30)
    GUNICORN_GRACEFUL_TIMEOUT    seconds to finish requests on restart (30)
    GUNICORN_KEEPALIVE           keep-alive seconds, threaded workers only (5)
    GUNICORN_MAX_REQUESTS        recycle a worker after this many requests
                                 (1000, 0 = never), plus up to
    GUNICORN_MAX_REQUESTS_JITTER extra requests (100) so they don't all
                                 restart at once
    GUNICORN_LOG_LEVEL           debug, info, warning, error (info)
    FORWARDED_ALLOW_IPS          proxies trusted for X-Forwarded-Proto
                                 (default loopback only; see below)
"""

from __future__ import annotations

import math
import os
from pathlib import Path

DEFAULT_PORT = 8000
DEFAULT_MAX_WORKERS = 8


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """Read a whole number from the environment, refusing anything else."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        msg = f"{name} must be a whole number, got {raw!r}"
        raise ValueError(msg) from None
    if value < minimum:
        msg = f"{name} must be at least {minimum}, got {value}"
        raise ValueError(msg)
    return value


def usable_cpus() -> int:
    """Count the CPUs this process may really use.

    os.cpu_count() reports every core of the host. A container is usually
    held to fewer, by CPU pinning (seen by sched_getaffinity) or by a cgroup
    v2 quota (`docker run --cpus`, Kubernetes limits: /sys/fs/cgroup/cpu.max).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not every platform has it (macOS)
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))


def default_workers() -> int:
    """2 x cores + 1, capped.

    The cap matters more than the formula: every worker keeps its own
    SQLAlchemy connection pool, so workers x pool size x app containers must
    stay under PostgreSQL's max_connections (or PgBouncer's pool, see
    infra/SCALE-OUT.md).
    """
    cap = env_int("GUNICORN_MAX_WORKERS", DEFAULT_MAX_WORKERS, minimum=1)
    return min(2 * usable_cpus() + 1, cap)


# Where to listen. Inside a container every interface is the right answer:
# the published port (compose binds it to 127.0.0.1) is the boundary.
bind = [
    address.strip()
    for address in os.environ.get(
        "BIND",
        f"0.0.0.0:{env_int('PORT', DEFAULT_PORT, minimum=1)}",
    ).split(",")
    if address.strip()
]

# Processes. WEB_CONCURRENCY is taken as given; the cap only shapes the default.
workers = env_int("WEB_CONCURRENCY", default_workers(), minimum=1)
threads = env_int("GUNICORN_THREADS", 1, minimum=1)
worker_class = "gthread" if threads > 1 else "sync"

# Off on purpose. With preload the app (and any database connection opened
# while creating it) is built once in the master and shared by the forked
# workers, which then talk over the same socket; SQLAlchemy engines must not
# cross a fork. Loading in each worker also lets a HUP pick up new code.
preload_app = False

# Long work (policy simulation, monthly billing close, exports) belongs in the
# `diversion` CLI, not behind a web request, so 30 seconds is generous.
timeout = env_int("GUNICORN_TIMEOUT", 30, minimum=1)
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30, minimum=1)
keepalive = env_int("GUNICORN_KEEPALIVE", 5, minimum=1)
max_requests = env_int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = env_int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# Workers prove they are alive by touching a file. On a disk-backed or
# overlay filesystem that can stall; /dev/shm is memory, and exists in
# containers even with a read-only root filesystem.
shm = Path("/dev/shm")  # noqa: S108
worker_tmp_dir = str(shm) if shm.is_dir() else None

# Gunicorn 25+ opens a control socket under $HOME by default. Nothing here
# uses it, and the image's home directory is read-only.
control_socket_disable = True

# Gunicorn's own handling of X-Forwarded-Proto (wsgi.url_scheme) trusts only
# the peers listed here. Set FORWARDED_ALLOW_IPS to the proxy's address or
# network; "*" only where nothing but the proxy can reach this port. The
# client address (X-Forwarded-For, used by rate limits and the audit log) is
# the app's business: ProxyFix with PROXY_FIX_X_FOR = the number of proxies.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs go to stdout/stderr for the container runtime to collect. The access
# log leaves out query strings, which may carry search terms about people;
# it keeps the proxy's request id so a line can be matched with the proxy's.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = (
    '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms '
    'xff="%({x-forwarded-for}i)s" rid="%({x-request-id}i)s" ua="%(a)s"'
)

proc_name = "diversion"
