"""Synthgate's production configuration, run for real as local processes.

``ProductionStack`` starts Airflow 3 (CeleryExecutor, metadata on PostgreSQL, Redis
broker) and an MLflow tracking server (PostgreSQL backend store, proxied artifacts)
against the PostgreSQL and Redis servers already running on the machine, and drives
DAG runs through the REST API::

    with ProductionStack(dags_folder, repo_root, tmp_path) as stack:
        stack.wait_for_dag("my_dag", timeout=60)
        run_id = stack.trigger("my_dag", {"rows": 10})
        assert stack.wait("my_dag", run_id, timeout=120) == "success"

Each session gets fresh, uniquely named databases (dropped ``WITH (FORCE)`` on exit),
a Redis database of its own (claimed with a key, flushed on exit), free TCP ports and
per-session secrets. Each service runs in its own session / process group and is
stopped as a group. A watchdog (this file run as a script) cleans up if the Python
process that started the stack dies without running its exit handlers (SIGKILL).

Server settings: ``PRODSTACK_PG_{HOST,PORT,USER,PASSWORD}`` and
``PRODSTACK_REDIS_{HOST,PORT}`` (default 127.0.0.1:5432 as postgres, 127.0.0.1:6379).

The dag-processor parses the DAG folder at start-up, then lists it again only every
``[dag_processor] refresh_interval`` (300 s): write DAG files before starting, or pass
``env_extra={"AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5"}``. ``env_extra`` is
applied on top of every generated variable (services, tasks and ``env``).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import psycopg2
from psycopg2 import sql

__all__ = [
    "AIRFLOW_ENV_KEYS",
    "SERVICES",
    "STATIC_AIRFLOW_ENV",
    "PgServer",
    "ProductionStack",
    "RedisServer",
    "StackError",
]

#: Every ``AIRFLOW__*`` variable the stack sets (docker-compose.yml sets a superset).
AIRFLOW_ENV_KEYS: tuple[str, ...] = (
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__BASE_URL",
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API__WORKERS",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW__CORE__PARALLELISM",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
)

#: Values that are the same in every deployment (docker-compose.yml uses them too).
STATIC_AIRFLOW_ENV: dict[str, str] = {
    "AIRFLOW__CORE__AUTH_MANAGER": ("airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"),
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
}

#: Long-running services, in start order; each logs to ``<workdir>/logs/<name>.log``.
SERVICES: tuple[str, ...] = (
    "mlflow",
    "api-server",
    "scheduler",
    "dag-processor",
    "triggerer",
    "worker",
)

ADMIN_USER = "admin"
WORKER_CONCURRENCY = 2
#: Default ports; 8793/8794 (worker/triggerer log servers) clash silently.
_RESERVED_PORTS = frozenset({5000, 8080, 8793, 8794, 8974})
_REDIS_CLAIM_KEY = "synthgate:prodstack:owner"
_REDIS_CLAIM_TTL_S = 12 * 3600
_REDIS_FIRST_DB = 5
_TERMINAL_RUN_STATES = frozenset({"success", "failed"})
_LOG_TAIL_LINES = 40
_WORKER_READY = re.compile(r"@\S+ ready\.")


class StackError(RuntimeError):
    """The stack failed to start or an operation on it failed (with log tails)."""


# ------------------------------------------------------------------------------------
# Server settings and the resources a session holds (shared with the watchdog)
# ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgServer:
    """Where the PostgreSQL server is and who to connect as."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""

    @classmethod
    def from_env(cls) -> PgServer:
        """Read ``PRODSTACK_PG_*``, falling back to the local trust-auth server."""
        return cls(
            host=os.environ.get("PRODSTACK_PG_HOST", cls.host),
            port=int(os.environ.get("PRODSTACK_PG_PORT", cls.port)),
            user=os.environ.get("PRODSTACK_PG_USER", cls.user),
            password=os.environ.get("PRODSTACK_PG_PASSWORD", cls.password),
        )

    def url(self, database: str, scheme: str = "postgresql") -> str:
        """Return an SQLAlchemy-style URL for ``database``."""
        auth = urllib.parse.quote(self.user, safe="")
        if self.password:
            auth += ":" + urllib.parse.quote(self.password, safe="")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> Any:
        """Open an autocommit connection (CREATE/DROP DATABASE need one)."""
        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=database,
            connect_timeout=5,
        )
        conn.autocommit = True
        return conn


@dataclass(frozen=True)
class RedisServer:
    """Where the Redis server is."""

    host: str = "127.0.0.1"
    port: int = 6379

    @classmethod
    def from_env(cls) -> RedisServer:
        """Read ``PRODSTACK_REDIS_*``, falling back to the local server."""
        return cls(
            host=os.environ.get("PRODSTACK_REDIS_HOST", cls.host),
            port=int(os.environ.get("PRODSTACK_REDIS_PORT", cls.port)),
        )


@dataclass
class _Resources:
    """What a session must give back; sent to the watchdog on every change."""

    pg: dict[str, Any]
    redis: dict[str, Any]
    session: str
    grace_s: float
    pgids: list[int] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    redis_db: int | None = None


class _Redis:
    """Minimal RESP2 client over a socket (no redis package needed)."""

    def __init__(self, server: RedisServer, timeout: float = 5.0) -> None:
        self._sock = socket.create_connection((server.host, server.port), timeout)
        self._file = self._sock.makefile("rb")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()
        self._sock.close()

    def __call__(self, *args: str | int) -> Any:
        """Send one command, return its decoded reply; error replies raise."""
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self._sock.sendall(b"".join(out))
        return self._read()

    def _read(self) -> Any:
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise StackError("Redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise StackError(f"Redis error: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._file.read(size + 2)[:-2].decode()
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._read() for _ in range(size)]
        raise StackError(f"unexpected Redis reply {line!r}")


def _claim_redis_db(server: RedisServer, owner: str) -> int:
    """Claim the first empty Redis database from 5 up with an expiring owner key."""
    with _Redis(server) as redis:
        for db in range(_REDIS_FIRST_DB, 64):
            try:
                redis("SELECT", db)
            except StackError:
                break  # past the server's `databases` setting
            claim = ("SET", _REDIS_CLAIM_KEY, owner, "NX", "EX", _REDIS_CLAIM_TTL_S)
            if redis(*claim) != "OK":
                continue  # another live stack owns it
            if redis("DBSIZE") == 1:
                return db
            # Used by something that does not follow this protocol: leave it alone.
            redis("DEL", _REDIS_CLAIM_KEY)
    raise StackError(f"no free Redis database from db 5 on {server.host}")


def _alive(pgid: int) -> bool:
    """Tell whether any process is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _stop_groups(pgids: list[int], grace_s: float, reap: Mapping[int, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each group, wait up to ``grace_s``, SIGKILL the rest; empty ``pgids``."""
    for pgid in pgids:
        _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    pending = list(pgids)
    while pending and time.monotonic() < deadline:
        for pgid in pending:
            if pgid in reap:  # reap the leader, or its zombie keeps the group "alive"
                reap[pgid].poll()
        pending = [pgid for pgid in pending if _alive(pgid)]
        if pending:
            time.sleep(0.2)
    for pgid in pending:
        _signal_group(pgid, signal.SIGKILL)
        if pgid in reap:
            with contextlib.suppress(subprocess.TimeoutExpired):
                reap[pgid].wait(timeout=5)
    pgids.clear()


def _drop_databases(pg: PgServer, databases: list[str]) -> None:
    """DROP each database WITH (FORCE); remove the dropped names from the list."""
    if not databases:
        return
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            for name in list(databases):
                query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                cur.execute(query.format(sql.Identifier(name)))
                databases.remove(name)
    finally:
        conn.close()


def _release(res: _Resources, reap: Mapping[int, subprocess.Popen[bytes]] | None = None) -> None:
    """Stop every process group, drop the databases, flush the claimed Redis db.

    Idempotent: what was released is removed from ``res``. ``reap`` maps group ids
    to the ``Popen`` of their leader (only the parent can reap them).
    """
    _stop_groups(res.pgids, res.grace_s, reap or {})
    _drop_databases(PgServer(**res.pg), res.databases)
    if res.redis_db is not None:
        with _Redis(RedisServer(**res.redis)) as redis:
            redis("SELECT", res.redis_db)
            if redis("GET", _REDIS_CLAIM_KEY) == res.session:
                redis("FLUSHDB")
        res.redis_db = None


def _watchdog_main() -> None:
    """Keep the latest resources read from stdin; release them on EOF.

    The parent writes one JSON line per change and ``done`` once it cleaned up
    itself. EOF without ``done`` means the parent died (or failed to clean up).
    """
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    state: dict[str, Any] | None = None
    for line in sys.stdin:
        if line.strip() == "done":
            return
        state = json.loads(line)
    if state is not None:
        _release(_Resources(**state))


# ------------------------------------------------------------------------------------
# The stack
# ------------------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    """Return distinct free TCP ports on 127.0.0.1, avoiding the defaults."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
            port = sock.getsockname()[1]
            if port not in _RESERVED_PORTS:
                ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def _executable(name: str) -> str:
    """Find ``name`` beside this interpreter (the virtualenv), else on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise StackError(f"{name!r} is neither beside {sys.executable} nor on PATH")
    return found


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _components_healthy(body: str) -> bool:
    """Tell whether every component in a monitor/health body is ``healthy``."""
    try:
        health = json.loads(body)
    except json.JSONDecodeError:
        return False
    names = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return all((health.get(n) or {}).get("status") == "healthy" for n in names)


class ProductionStack:
    """Airflow (CeleryExecutor) and an MLflow server on fresh databases, as processes.

    Use it as a context manager, once per test session (start-up takes ~15 s).
    """

    def __init__(
        self,
        dags_folder: Path,
        repo_root: Path,
        workdir: Path,
        env_extra: dict[str, str] | None = None,
        *,
        startup_timeout: float = 180.0,
        stop_grace: float = 15.0,
        pg: PgServer | None = None,
        redis: RedisServer | None = None,
    ) -> None:
        """Describe a stack; nothing starts before ``start()`` / ``with``."""
        self.dags_folder = Path(dags_folder).resolve()
        self.repo_root = Path(repo_root).resolve()
        self.workdir = Path(workdir).resolve()
        self.env_extra = dict(env_extra or {})
        self.startup_timeout = startup_timeout
        self.pg = pg or PgServer.from_env()
        self.redis = redis or RedisServer.from_env()

        self.session = f"{time.strftime('%Y%m%d%H%M%S')}_{secrets.token_hex(4)}"
        self.airflow_db = f"sg_airflow_{self.session}"
        self.mlflow_db = f"sg_mlflow_{self.session}"
        self.airflow_home = self.workdir / "airflow_home"
        self.logs_dir = self.workdir / "logs"
        self.artifacts_dir = self.workdir / "mlartifacts"
        self.username = ADMIN_USER
        self.password = secrets.token_urlsafe(16)
        #: Seconds from ``start()`` until every service was healthy.
        self.startup_seconds: float | None = None

        self.api_port = self.mlflow_port = 0
        self.worker_log_port = self.triggerer_log_port = 0
        self._env: dict[str, str] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._res = _Resources(
            pg=asdict(self.pg),
            redis=asdict(self.redis),
            session=self.session,
            grace_s=stop_grace,
        )
        self._watchdog: subprocess.Popen[str] | None = None
        self._http: httpx.Client | None = None
        self._token: str | None = None
        self._started = False

    # --------------------------------------------------------------------- lifecycle

    def __enter__(self) -> Self:
        """Start the stack."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the stack."""
        self.stop()

    def start(self) -> None:
        """Create databases, configure, migrate, start services, wait until healthy."""
        if self._started:
            raise StackError("stack already started")
        self._started = True
        t0 = time.monotonic()
        atexit.register(self.stop)
        self._start_watchdog()
        try:
            self._create_databases()
            self._res.redis_db = _claim_redis_db(self.redis, self.session)
            self._sync_watchdog()
            ports = _free_ports(4)
            self.api_port, self.mlflow_port = ports[0], ports[1]
            self.worker_log_port, self.triggerer_log_port = ports[2], ports[3]
            self._write_home()
            self._http = httpx.Client(timeout=30.0)
            # MLflow migrates its own database while `airflow db migrate` runs.
            self._spawn("mlflow", self._mlflow_command(), self._mlflow_env())
            self._migrate()
            airflow = _executable("airflow")
            self._spawn("api-server", [airflow, "api-server"])
            self._spawn("scheduler", [airflow, "scheduler"])
            self._spawn("dag-processor", [airflow, "dag-processor"])
            self._spawn("triggerer", [airflow, "triggerer"])
            worker_name = f"prodstack-{self.session}@%h"
            self._spawn(
                "worker",
                [
                    airflow,
                    "celery",
                    "worker",
                    "--celery-hostname",
                    worker_name,
                    "--concurrency",
                    str(WORKER_CONCURRENCY),
                ],
            )
            self._wait_healthy(t0 + self.startup_timeout)
            self.token()
            self.startup_seconds = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process group; give back the databases and the Redis db."""
        if self._http is not None:
            self._http.close()
            self._http = None
        by_pgid = {proc.pid: proc for proc in self._procs.values()}
        released = False
        try:
            _release(self._res, by_pgid)
            released = True
        finally:
            self._procs.clear()
            # Without "done" the watchdog retries whatever we failed to release.
            self._stop_watchdog(released)
            atexit.unregister(self.stop)

    # -------------------------------------------------------------------- properties

    @property
    def api_url(self) -> str:
        """Base URL of the Airflow API server (no trailing slash)."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def mlflow_uri(self) -> str:
        """MLflow tracking URI."""
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for Airflow CLI calls, clients and tasks (a copy)."""
        return dict(self._env)

    def service_env(self) -> dict[str, str]:
        """Return ``env`` over the caller's environment, minus its Airflow config."""
        foreign = ("AIRFLOW__", "AIRFLOW_HOME", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "MLFLOW_")
        base = {k: v for k, v in os.environ.items() if not k.startswith(foreign)}
        bin_dir = str(Path(sys.executable).parent)
        base["PATH"] = os.pathsep.join([bin_dir, base.get("PATH", os.defpath)])
        return base | self._env

    def log_path(self, name: str) -> Path:
        """Return the log file of service ``name`` (see SERVICES) or ``db-migrate``."""
        return self.logs_dir / f"{name}.log"

    def log_tails(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of every log, for error messages."""
        return "\n".join(
            f"----- {name}.log (last {lines} lines) -----\n{_tail(self.log_path(name), lines)}"
            for name in ("db-migrate", *SERVICES)
        )

    # ---------------------------------------------------------------------- REST API

    def token(self) -> str:
        """Fetch a JWT (``POST /auth/token`` as the simple auth manager's admin)."""
        response = self._client.post(
            f"{self.api_url}/auth/token",
            json={"username": self.username, "password": self.password},
        )
        if response.status_code != 201:
            raise StackError(f"POST /auth/token: {response.status_code} {response.text}")
        self._token = str(response.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send an authenticated request to ``api_url + path``; raise on errors."""
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self._token or self.token()}"}
            url = f"{self.api_url}{path}"
            response = self._client.request(method, url, headers=headers, **kwargs)
            if response.status_code == 401 and attempt == 0:
                self._token = None  # expired: fetch a new one once
                continue
            break
        if response.is_error:
            raise StackError(f"{method} {path}: {response.status_code} {response.text}")
        return response

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Unpause ``dag_id``, start a manual run with ``conf``; return its run id."""
        dag = _quote(dag_id)
        self.api("PATCH", f"/api/v2/dags/{dag}", json={"is_paused": False})
        body = {"logical_date": None, "conf": conf or {}}
        response = self.api("POST", f"/api/v2/dags/{dag}/dagRuns", json=body)
        return str(response.json()["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        """Return the current state of a DAG run."""
        path = f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}"
        return str(self.api("GET", path).json()["state"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 300.0, poll: float = 1.0) -> str:
        """Poll until the run is ``success`` or ``failed``; return that state.

        Raise TimeoutError (with task states and log tails) after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            state = self.run_state(dag_id, run_id)
            if state in _TERMINAL_RUN_STATES:
                return state
            if time.monotonic() > deadline:
                tasks = self.task_states(dag_id, run_id)
                raise TimeoutError(
                    f"{dag_id}/{run_id} still {state!r} after {timeout:.0f} s; tasks: {tasks}\n{self.log_tails()}"
                )
            self._check_processes()
            time.sleep(poll)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Return the task instances of a run as the API gives them."""
        run = f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}"
        items: list[dict[str, Any]] = []
        while True:
            params = {"limit": 100, "offset": len(items)}
            page = self.api("GET", f"{run}/taskInstances", params=params).json()
            items.extend(page["task_instances"])
            total = page.get("total_entries") or 0
            if not page["task_instances"] or len(items) >= total:
                return items

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """Return ``{task_id: state}``; mapped ones are keyed ``task_id[i]``."""
        states: dict[str, str | None] = {}
        for ti in self.task_instances(dag_id, run_id):
            key = ti["task_id"]
            if ti.get("map_index", -1) >= 0:
                key = f"{key}[{ti['map_index']}]"
            states[key] = ti["state"]
        return states

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """Return the text of one task try's log (for failure messages)."""
        path = (
            f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances/{_quote(task_id)}/logs/{try_number}"
        )
        body = self.api("GET", path, params={"full_content": "true"}).json()
        content = body.get("content", body)
        if isinstance(content, list):
            return "\n".join(str(item.get("event", item)) if isinstance(item, dict) else str(item) for item in content)
        return str(content)

    def import_errors(self) -> list[dict[str, Any]]:
        """Return the DAG import errors the dag-processor recorded."""
        response = self.api("GET", "/api/v2/importErrors", params={"limit": 100})
        return list(response.json()["import_errors"])

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> None:
        """Poll until the dag-processor has parsed and serialised ``dag_id``."""
        deadline = time.monotonic() + timeout
        path = f"/api/v2/dags/{_quote(dag_id)}"
        while True:
            headers = {"Authorization": f"Bearer {self._token or self.token()}"}
            response = self._client.get(f"{self.api_url}{path}", headers=headers)
            if response.status_code == 200:
                return
            if response.status_code == 401:
                self._token = None
            elif response.status_code != 404:
                raise StackError(f"GET {path}: {response.status_code} {response.text}")
            if time.monotonic() > deadline:
                errors = "\n".join(f"{e.get('filename')}:\n{e.get('stack_trace')}" for e in self.import_errors())
                raise TimeoutError(
                    f"DAG {dag_id!r} not parsed from {self.dags_folder} after "
                    f"{timeout:.0f} s; import errors: {errors or 'none'}\n"
                    f"{_tail(self.log_path('dag-processor'))}"
                )
            self._check_processes()
            time.sleep(0.5)

    # --------------------------------------------------------------------- internals

    @property
    def _client(self) -> httpx.Client:
        if self._http is None:
            raise StackError("stack is not running")
        return self._http

    def _start_watchdog(self) -> None:
        self._watchdog = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--watchdog"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # survives a kill of the test run's group
        )

    def _sync_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.stdin is not None:
            self._watchdog.stdin.write(json.dumps(asdict(self._res)) + "\n")
            self._watchdog.stdin.flush()

    def _stop_watchdog(self, released: bool) -> None:
        if self._watchdog is None or self._watchdog.stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if released:
                self._watchdog.stdin.write("done\n")
            self._watchdog.stdin.close()
        try:
            self._watchdog.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._watchdog.kill()
        self._watchdog = None

    def _create_databases(self) -> None:
        conn = self.pg.connect()
        try:
            with conn.cursor() as cur:
                for name in (self.airflow_db, self.mlflow_db):
                    query = sql.SQL("CREATE DATABASE {}")
                    cur.execute(query.format(sql.Identifier(name)))
                    self._res.databases.append(name)
                    self._sync_watchdog()
        finally:
            conn.close()

    def _write_home(self) -> None:
        for folder in (self.airflow_home, self.logs_dir, self.artifacts_dir):
            folder.mkdir(parents=True, exist_ok=True)
        passwords = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        passwords.write_text(json.dumps({self.username: self.password}) + "\n")
        passwords.chmod(0o600)
        broker = f"redis://{self.redis.host}:{self.redis.port}/{self._res.redis_db}"
        pythonpath = [str(self.repo_root), os.environ.get("PYTHONPATH", "")]
        env = {
            **STATIC_AIRFLOW_ENV,
            "AIRFLOW_HOME": str(self.airflow_home),
            # >= 64 bytes: shorter HMAC keys make PyJWT warn on every token.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": self.pg.url(self.airflow_db, "db+postgresql"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.pg.url(self.airflow_db, "postgresql+psycopg2"),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.triggerer_log_port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_port),
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "PYTHONHASHSEED": "0",  # as docker-compose.yml: reproducible multi-table sampling
            "PYTHONPATH": os.pathsep.join(p for p in pythonpath if p),
        }
        drift = set(AIRFLOW_ENV_KEYS) ^ {k for k in env if k.startswith("AIRFLOW__")}
        if drift:
            raise StackError(f"AIRFLOW_ENV_KEYS out of sync: {sorted(drift)}")
        self._env = env | self.env_extra

    def _mlflow_command(self) -> list[str]:
        return [
            _executable("mlflow"),
            "server",
            "--backend-store-uri",
            self.pg.url(self.mlflow_db),
            "--artifacts-destination",
            str(self.artifacts_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.mlflow_port),
            "--workers",
            "1",
        ]

    def _mlflow_env(self) -> dict[str, str]:
        return self.service_env() | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``command`` in a new session (``setsid``), output to its log."""
        with self.log_path(name).open("ab") as log:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env or self.service_env(),
                cwd=self.repo_root,
                start_new_session=True,
            )
        self._procs[name] = proc
        self._res.pgids.append(proc.pid)
        self._sync_watchdog()

    def _migrate(self) -> None:
        log_path = self.log_path("db-migrate")
        with log_path.open("ab") as log:
            result = subprocess.run(
                [_executable("airflow"), "db", "migrate"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.service_env(),
                cwd=self.repo_root,
                timeout=self.startup_timeout,
                check=False,
            )
        if result.returncode != 0:
            raise StackError(f"airflow db migrate failed ({result.returncode})\n{_tail(log_path)}")

    def _check_processes(self) -> None:
        dead = {n: p.returncode for n, p in self._procs.items() if p.poll() is not None}
        if dead:
            raise StackError(f"service(s) exited: {dead}\n{self.log_tails()}")

    def _wait_healthy(self, deadline: float) -> None:
        """Wait for MLflow /health, API monitor/health (all parts) and the worker."""
        pending = {"mlflow", "api-server", "worker"}
        detail: dict[str, str] = {}
        while pending:
            self._check_processes()
            if "mlflow" in pending:
                ok, detail["mlflow"] = self._probe(f"{self.mlflow_uri}/health")
                if ok:
                    pending.discard("mlflow")
            if "api-server" in pending:
                ok, body = self._probe(f"{self.api_url}/api/v2/monitor/health")
                detail["api-server"] = body
                if ok and _components_healthy(body):
                    pending.discard("api-server")
            if "worker" in pending:
                # Celery logs "<name>@<host> ready." once it consumes from the broker.
                if _WORKER_READY.search(_tail(self.log_path("worker"), 10_000)):
                    pending.discard("worker")
                else:
                    detail["worker"] = "celery worker not ready yet"
            if pending and time.monotonic() > deadline:
                status = "\n".join(f"{n}: {detail.get(n, '?')}" for n in sorted(pending))
                raise StackError(
                    f"stack not healthy after {self.startup_timeout:.0f} s; pending:\n{status}\n{self.log_tails()}"
                )
            if pending:
                time.sleep(0.5)

    def _probe(self, url: str) -> tuple[bool, str]:
        try:
            response = self._client.get(url, timeout=5.0)
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return response.status_code == 200, response.text[:500]


if __name__ == "__main__" and sys.argv[1:] == ["--watchdog"]:
    _watchdog_main()
