"""A stand-in for Harbor's v2.0 REST API, built from Harbor's published API description.

Harbor cannot run where airlock is developed, so airlock.cluster's harbor_* modules are
tested against this instead. It is honest about what it is:

- **The contract is Harbor's own file.** `harbor-api-v2.15.2.yaml` is a verbatim cut of
  goharbor/harbor `api/v2.0/swagger.yaml` at v2.15.2 (see its header). Every request is
  checked against the operation it addresses (path, method, path/query/header parameters
  with their types and limits, the body against its schema) and every response the
  stand-in gives against the responses that operation declares (status and body schema).
  Schemas are applied strictly: an object may carry only the properties the file names
  (Harbor's Go server silently drops unknown fields, so a misspelt field would be lost
  there; here it fails the test), and null only where the file says `x-nullable`. A
  request the file does not describe, or a response the file does not allow, is recorded
  in `violations`; the test fixture fails the test when any was recorded.
- **Behaviour beyond the file** (what Harbor does with a valid request) follows Harbor's
  handlers at the same commit; each handler below names the Go file it follows. Only what
  the modules use is modelled; any other operation is a violation.
- **What it is not:** no database, no registry (no image is stored or pulled), no
  sessions, no CSRF (Harbor skips CSRF checks for /api/ requests without a session
  cookie, src/server/middleware/csrf/csrf.go), no LDAP/OIDC.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import itertools
import json
import re
import secrets
import ssl
import string
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, FormatChecker

SPEC_FILE = Path(__file__).with_name("harbor-api-v2.15.2.yaml")
ADMIN_PASSWORD = "Harbor12345"  # harbor.yml.tmpl's example; any string would do here
DEV_PASSWORD = "Developer1"

# Harbor's project-scope robot permissions: PoliciesMap[ScopeProject] plus NolimitProvider's
# additions (src/common/rbac/const.go). CreateRobot refuses any other resource:action.
_PROJECT_ACTIONS = {
    "log": ("list",),
    "project": ("read", "delete", "update"),
    "metadata": ("read", "create", "delete", "list", "update"),
    "repository": ("read", "update", "delete", "list", "pull", "push"),
    "artifact": ("read", "create", "list", "delete"),
    "scan": ("create", "read", "stop"),
    "sbom": ("create", "stop", "read"),
    "tag": ("create", "list", "delete"),
    "accessory": ("list",),
    "artifact-addition": ("read",),
    "artifact-label": ("create", "delete"),
    "scanner": ("create", "read"),
    "preheat-policy": ("read", "create", "delete", "list", "update"),
    "immutable-tag": ("create", "delete", "list", "update"),
    "notification-policy": ("read", "create", "delete", "list", "update"),
    "tag-retention": ("read", "create", "delete", "list", "update"),
    "label": ("read", "create", "delete", "list", "update"),
    "quota": ("read",),
    "robot": ("create", "read", "list", "delete"),
    "export-cve": ("create", "read"),
    "member": ("create", "read", "update", "list", "delete"),
}
PROJECT_POLICIES = frozenset((r, a) for r, actions in _PROJECT_ACTIONS.items() for a in actions)
# A few of the system-scope ones (enough to tell a system permission from a wrong one).
SYSTEM_POLICIES = frozenset(
    {
        ("project", "list"),
        ("project", "create"),
        ("catalog", "read"),
        ("quota", "read"),
        ("quota", "list"),
        ("robot", "create"),
    }
)
_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_MAX_QUOTA = 1024**5
_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    412: "PRECONDITION",
    500: "UNKNOWN",
}


# --- the API description --------------------------------------------------------------
def strict(schema: Any) -> Any:
    """A Swagger 2.0 schema as a strict JSON Schema (draft 4).

    Objects with `properties` admit no others; `x-nullable: true` admits null; other
    `x-` keys are dropped. A `$ref` keeps only the reference (draft 4 ignores siblings).
    """
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        out: dict[str, Any] = {"$ref": schema["$ref"]}
    else:
        out = {k: v for k, v in schema.items() if not k.startswith("x-")}
        if "properties" in out:
            out["properties"] = {k: strict(v) for k, v in out["properties"].items()}
            out.setdefault("additionalProperties", False)
        if isinstance(out.get("additionalProperties"), dict):
            out["additionalProperties"] = strict(out["additionalProperties"])
        if "items" in out:
            out["items"] = strict(out["items"])
    if schema.get("x-nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("int32")
    def _int32(value: object) -> bool:
        return not isinstance(value, int) or -(2**31) <= value < 2**31

    @checker.checks("int64")
    def _int64(value: object) -> bool:
        return not isinstance(value, int) or -(2**63) <= value < 2**63

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if isinstance(value, str):
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    return checker


@dataclass
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    operation_id: str
    parameters: list[dict[str, Any]]
    responses: dict[str, dict[str, Any]]


class ApiSpec:
    """The operations and schemas of the API description file."""

    def __init__(self, path: Path = SPEC_FILE) -> None:
        self.doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.base_path: str = self.doc["basePath"]
        self.definitions = {n: strict(s) for n, s in self.doc["definitions"].items()}
        self.checker = _format_checker()
        self.operations: list[Operation] = []
        for template, item in self.doc["paths"].items():
            shared = item.get("parameters", [])
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            for method, op in item.items():
                if method == "parameters":
                    continue
                self.operations.append(
                    Operation(
                        method=method.upper(),
                        template=template,
                        pattern=re.compile(f"^{regex}$"),
                        operation_id=op["operationId"],
                        parameters=[self._resolve(p) for p in [*shared, *op.get("parameters", [])]],
                        responses={
                            str(code): self._resolve(r) for code, r in op["responses"].items()
                        },
                    )
                )

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if not ref:
            return node
        section, name = ref[2:].split("/", 1)
        return self.doc[section][name]

    def validator(self, schema: dict[str, Any]) -> Draft4Validator:
        root = strict(schema)
        if "$ref" in root or "anyOf" in root:
            root = {"allOf": [root]}
        root["definitions"] = self.definitions
        return Draft4Validator(root, format_checker=self.checker)

    def schema_errors(self, schema: dict[str, Any], value: Any, where: str) -> list[str]:
        return [
            f"{where}: {'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message}"
            for e in self.validator(schema).iter_errors(value)
        ]

    def operation(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        if not path.startswith(self.base_path + "/"):
            return None
        rest = path[len(self.base_path) :]
        for op in self.operations:
            match = op.pattern.match(rest)
            if op.method == method and match:
                return op, {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
        return None

    @staticmethod
    def _typed(param: dict[str, Any], raw: str, where: str) -> tuple[Any, list[str]]:
        kind = param.get("type", "string")
        value: Any = raw
        try:
            if kind == "integer":
                value = int(raw)
            elif kind == "boolean":
                if raw not in ("true", "false"):
                    raise ValueError(raw)
                value = raw == "true"
        except ValueError:
            return None, [f"{where} {param['name']}={raw!r} is not a {kind}"]
        problems = []
        if "maximum" in param and value > param["maximum"]:
            problems.append(f"{where} {param['name']}={value} is above {param['maximum']}")
        if "minLength" in param and len(raw) < param["minLength"]:
            problems.append(f"{where} {param['name']} is shorter than {param['minLength']}")
        return value, problems

    def check_request(
        self,
        op: Operation,
        path_params: dict[str, str],
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[dict[str, Any], list[str]]:
        """(The typed parameters, every way the request departs from the operation)."""
        problems: list[str] = []
        values: dict[str, Any] = {}
        declared = {(p["in"], p["name"]) for p in op.parameters}
        for name in query:
            if ("query", name) not in declared:
                problems.append(f"query parameter {name!r} is not declared for {op.operation_id}")
        for param in op.parameters:
            where, name = param["in"], param["name"]
            if where == "path":
                value, bad = self._typed(param, path_params[name], "path")
                values[name] = value
                problems += bad
            elif where == "query":
                if name not in query:
                    if param.get("required"):
                        problems.append(f"query parameter {name!r} is required")
                    continue
                if len(query[name]) != 1:
                    problems.append(f"query parameter {name!r} given {len(query[name])} times")
                value, bad = self._typed(param, query[name][0], "query")
                values[name] = value
                problems += bad
            elif where == "header":
                raw = headers.get(name.lower())
                if raw is not None:
                    value, bad = self._typed(param, raw, "header")
                    values[name] = value
                    problems += bad
            elif where == "body":
                if not body:
                    if param.get("required"):
                        problems.append(f"{op.operation_id} requires a body ({name})")
                    continue
                ctype = headers.get("content-type", "").split(";")[0].strip()
                if ctype != "application/json":
                    problems.append(f"body sent as {ctype!r}, the API consumes application/json")
                try:
                    value = json.loads(body)
                except ValueError:
                    problems.append("body is not JSON")
                    continue
                values[name] = value
                problems += self.schema_errors(param["schema"], value, f"request body {name}")
        if body and not any(p["in"] == "body" for p in op.parameters):
            problems.append(f"{op.operation_id} takes no body, got {len(body)} bytes")
        return values, problems

    def check_response(
        self, op: Operation, status: int, headers: dict[str, str], body: Any
    ) -> list[str]:
        response = op.responses.get(str(status))
        if response is None:
            return [
                f"{op.operation_id} declares no {status} response "
                f"(only {', '.join(sorted(op.responses))})"
            ]
        problems: list[str] = []
        if "schema" in response:
            problems += self.schema_errors(response["schema"], body, f"{status} response")
        elif body is not None:
            problems.append(f"{op.operation_id}'s {status} response has no body in the API")
        for name, spec in (response.get("headers") or {}).items():
            if name in headers and spec.get("type") == "integer":
                try:
                    int(headers[name])
                except ValueError:
                    problems.append(f"response header {name}={headers[name]!r} not an integer")
        return problems


# --- Harbor's behaviour -----------------------------------------------------------------
@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, message: str) -> Reply:
    """Harbor's error body (src/lib/errors/errors.go: Errors.Error)."""
    return Reply(status, {"errors": [{"code": _CODES[status], "message": message}]})


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _secret() -> str:
    """A secret Harbor's IsValidSec accepts (8-128 characters, upper, lower, digit)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(32))
        kinds = (str.islower, str.isupper, str.isdigit)
        if all(any(kind(c) for c in value) for kind in kinds):
            return value


@dataclass
class User:
    user_id: int
    username: str
    password: str
    sysadmin: bool


@dataclass
class StoredProject:
    project_id: int
    name: str
    metadata: dict[str, str]
    repo_count: int = 0
    owner_id: int = 1
    created: str = field(default_factory=_now)


@dataclass
class StoredQuota:
    quota_id: int
    project_id: int
    storage: int
    created: str = field(default_factory=_now)


@dataclass
class StoredRobot:
    robot_id: int
    name: str  # as stored: without the prefix (project robots: PROJECT+NAME)
    level: str
    project_id: int
    description: str
    duration: int
    expires_at: int
    secret: str
    # (kind, namespace scope) -> accesses; a project scope holds the project's id, as
    # Harbor's rbac policies do ("/project/3"), so a deleted project drops out.
    scopes: list[tuple[str, str, list[dict[str, str]]]]
    disable: bool = False
    editable: bool = True
    created_at: float = field(default_factory=time.time)
    created: str = field(default_factory=_now)


@dataclass
class Recorded:
    method: str
    path: str  # below /api/v2.0, without the query
    query: dict[str, list[str]]
    body: Any
    status: int


class HarborStandIn:
    """Harbor's API state and handlers, and the spec check around every exchange."""

    def __init__(self, spec: ApiSpec | None = None, robot_prefix: str = "robot$") -> None:
        self.spec = spec or ApiSpec()
        self.robot_prefix = robot_prefix
        self.quota_per_project = True
        self.storage_per_project = -1  # Harbor's default: unlimited
        self.users = {
            "admin": User(1, "admin", ADMIN_PASSWORD, True),
            "dev": User(3, "dev", DEV_PASSWORD, False),
        }
        self.projects: dict[int, StoredProject] = {}
        self.quotas: dict[int, StoredQuota] = {}
        self.robots: dict[int, StoredRobot] = {}
        self.violations: list[str] = []
        self.requests: list[Recorded] = []
        self.injected: dict[str, Reply] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # Harbor ships with one public project, "library" (id 1).
        self.seed_project("library", public=True)

    # -- what tests use ----------------------------------------------------------------
    def seed_project(
        self, name: str, public: bool = False, storage: int | None = -1, repo_count: int = 0
    ) -> StoredProject:
        project = StoredProject(
            next(self._ids), name, {"public": "true" if public else "false"}, repo_count
        )
        self.projects[project.project_id] = project
        if storage is not None:
            quota = StoredQuota(next(self._ids), project.project_id, storage)
            self.quotas[quota.quota_id] = quota
        return project

    def seed_robot(
        self,
        name: str,
        projects: list[str],
        access: list[tuple[str, str]],
        duration: int = -1,
        description: str = "",
        disable: bool = False,
        editable: bool = True,
        created_days_ago: int = 0,
    ) -> StoredRobot:
        created_at = time.time() - created_days_ago * 86400
        robot = StoredRobot(
            robot_id=next(self._ids),
            name=name,
            level="system",
            project_id=0,
            description=description,
            duration=duration,
            expires_at=-1 if duration == -1 else int(created_at) + duration * 86400,
            secret=_secret(),
            scopes=[
                (
                    "project",
                    f"/project/{self.project(p).project_id}",  # type: ignore[union-attr]
                    [{"resource": r, "action": a, "effect": "allow"} for r, a in access],
                )
                for p in projects
            ],
            disable=disable,
            editable=editable,
            created_at=created_at,
        )
        self.robots[robot.robot_id] = robot
        return robot

    def project(self, name: str) -> StoredProject | None:
        return next((p for p in self.projects.values() if p.name == name), None)

    def quota_of(self, project_id: int) -> StoredQuota | None:
        return next((q for q in self.quotas.values() if q.project_id == project_id), None)

    def robot(self, full_name: str) -> StoredRobot | None:
        return next((r for r in self.robots.values() if self._full(r) == full_name), None)

    def robot_grants(self, full_name: str) -> set[tuple[str, str, str]]:
        """(project, resource, action) of a robot, as Harbor would authorise them."""
        robot = self.robot(full_name)
        assert robot is not None, full_name
        return {
            (ns, a["resource"], a["action"])
            for kind, ns, accesses in self._permissions(robot)
            for a in accesses
            if kind == "project"
        }

    def robot_login(self, username: str, secret: str) -> bool:
        """Would Harbor authenticate these basic-auth credentials as a robot?

        src/server/middleware/security/robot.go: prefix, name, secret, not disabled, not
        expired. (This is how a node's pull would authenticate; no pull is modelled.)
        """
        if not username.startswith(self.robot_prefix):
            return False
        bare = username[len(self.robot_prefix) :]
        robot = next((r for r in self.robots.values() if r.name == bare), None)
        if robot is None or robot.secret != secret or robot.disable:
            return False
        return robot.expires_at == -1 or robot.expires_at > time.time()

    def writes(self) -> list[str]:
        """The changing requests received, as 'METHOD /path' (without /api/v2.0)."""
        return [f"{r.method} {r.path}" for r in self.requests if r.method != "GET"]

    def fail_next(self, operation_id: str, status: int, message: str) -> None:
        """The next call of `operation_id` gets this Harbor error instead of its answer."""
        self.injected[operation_id] = error(status, message)

    # -- one exchange --------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            reply, recorded = self._exchange(method, target, headers, body)
            if recorded is not None:
                recorded.status = reply.status
                self.requests.append(recorded)
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        out = {**reply.headers}
        if payload:
            out["Content-Type"] = "application/json; charset=utf-8"
        return reply.status, out, payload

    def _exchange(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[Reply, Recorded | None]:
        split = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        found = self.spec.operation(method, split.path)
        if found is None:
            self.violations.append(f"{method} {split.path}: no such operation in the API file")
            return error(404, "not found"), None
        op, path_params = found
        params, problems = self.spec.check_request(op, path_params, query, headers, body)
        path = split.path[len(self.spec.base_path) :]
        recorded = Recorded(method, path, query, params.get(_body_name(op)), 0)
        if problems:
            self.violations += [f"{method} {path}: {p}" for p in problems]
            return error(400, "; ".join(problems)), recorded
        handler: Callable[..., Reply] | None = getattr(self, f"op_{op.operation_id}", None)
        if handler is None:
            self.violations.append(f"{op.operation_id} is in the API but not in the stand-in")
            return error(500, "not modelled"), recorded
        user = self._user(headers.get("authorization", ""))
        injected = self.injected.pop(op.operation_id, None)
        reply = injected or handler(user=user, **params)
        problems = self.spec.check_response(op, reply.status, reply.headers, reply.body)
        self.violations += [f"{method} {path}: stand-in answer: {p}" for p in problems]
        return reply, recorded

    def _user(self, authorization: str) -> User | None:
        """Basic auth as a local user; wrong credentials are anonymous (basic_auth.go)."""
        if not authorization.startswith("Basic "):
            return None
        try:
            name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except ValueError:
            return None
        user = self.users.get(name)
        return user if user and secrets.compare_digest(user.password, password) else None

    # -- helpers mirroring Harbor -----------------------------------------------------------
    @staticmethod
    def _page(items: list[Any], page: int, page_size: int) -> tuple[list[Any], dict[str, str]]:
        start = (page - 1) * page_size
        return items[start : start + page_size], {"X-Total-Count": str(len(items))}

    def _full(self, robot: StoredRobot) -> str:
        return f"{self.robot_prefix}{robot.name}" if robot.editable else robot.name

    def _permissions(self, robot: StoredRobot) -> list[tuple[str, str, list[dict[str, str]]]]:
        """populatePermissions (controller/robot): scopes back to names; gone projects drop."""
        out = []
        for kind, scope, accesses in robot.scopes:
            if scope.startswith("/project/") and scope != "/project/*":
                project = self.projects.get(int(scope.rsplit("/", 1)[1]))
                if project is None:
                    continue
                out.append((kind, project.name, accesses))
            else:
                out.append((kind, "/" if kind == "system" else "*", accesses))
        return out

    def _robot_api(self, robot: StoredRobot) -> dict[str, Any]:
        """model.Robot.ToSwagger (handler/model/robot.go)."""
        return {
            "id": robot.robot_id,
            "name": self._full(robot),
            "description": robot.description,
            "expires_at": robot.expires_at,
            "duration": robot.duration,
            "level": robot.level,
            "disable": robot.disable,
            "editable": robot.editable,
            "creator_type": "local",
            "creator_ref": 1,
            "creation_time": robot.created,
            "update_time": robot.created,
            "permissions": [
                {"kind": k, "namespace": ns, "access": a} for k, ns, a in self._permissions(robot)
            ],
        }

    def _project_api(self, project: StoredProject) -> dict[str, Any]:
        """model.Project.ToSwagger (handler/model/project.go), for the admin."""
        return {
            "project_id": project.project_id,
            "owner_id": project.owner_id,
            "name": project.name,
            "registry_id": 0,
            "creation_time": project.created,
            "update_time": project.created,
            "owner_name": "admin",
            "current_user_role_id": 1,
            "current_user_role_ids": [1],
            "repo_count": project.repo_count,
            "metadata": dict(project.metadata),
            "cve_allowlist": {"id": 0, "project_id": project.project_id, "items": []},
        }

    def _project_by(self, name_or_id: str, is_name: bool | None) -> StoredProject | None:
        """parseProjectNameOrID: an integer is an id unless X-Is-Resource-Name is true."""
        if not is_name and name_or_id.isdigit():
            return self.projects.get(int(name_or_id))
        return self.project(name_or_id)

    # -- operations (named by operationId) ---------------------------------------------
    def op_getHealth(self, user: User | None, **_: Any) -> Reply:
        components = ["core", "database", "jobservice", "portal", "redis", "registry"]
        return Reply(
            200,
            {
                "status": "healthy",
                "components": [{"name": c, "status": "healthy"} for c in components],
            },
        )

    def op_getCurrentUserInfo(self, user: User | None, **_: Any) -> Reply:
        if user is None:
            return error(401, "unauthorized")
        return Reply(
            200,
            {
                "user_id": user.user_id,
                "username": user.username,
                "email": f"{user.username}@example.com",
                "realname": user.username,
                "comment": "",
                "sysadmin_flag": user.sysadmin,
                "admin_role_in_auth": False,
                "creation_time": _now(),
                "update_time": _now(),
            },
        )

    def op_listProjects(
        self,
        user: User | None,
        name: str | None = None,
        public: bool | None = None,
        page: int = 1,
        page_size: int = 10,
        **_: Any,
    ) -> Reply:
        """handler/project.go ListProjects: `name` is a substring match."""
        found = sorted(self.projects.values(), key=lambda p: p.project_id)
        if name:
            found = [p for p in found if name in p.name]
        if public is not None:
            found = [p for p in found if (p.metadata.get("public") == "true") == public]
        if user is None or not user.sysadmin:
            found = [p for p in found if p.metadata.get("public") == "true"]
        items, headers = self._page(found, page, page_size)
        return Reply(200, [self._project_api(p) for p in items], headers)

    def op_createProject(self, user: User | None, project: dict[str, Any], **_: Any) -> Reply:
        """handler/project.go CreateProject, pkg/project/manager.go Create."""
        if user is None:
            return error(401, "unauthorized")
        if project.get("registry_id") is not None:
            self.violations.append("proxy-cache projects (registry_id) are not modelled")
            return error(400, "not modelled")
        limit = project.get("storage_limit")
        if self.quota_per_project:
            if limit is None or limit == 0 or not user.sysadmin:
                limit = self.storage_per_project
        else:
            limit = None
        metadata = {k: v for k, v in (project.get("metadata") or {}).items() if v is not None}
        if project.get("public") is not None and not metadata.get("public"):
            metadata["public"] = "true" if project["public"] else "false"
        metadata.setdefault("public", "false")
        if metadata["public"] not in ("true", "false"):
            return error(
                400,
                "metadata.public should only be 'true' or 'false', but got: "
                f"'{metadata['public']}'",
            )
        if limit is not None and not (limit == -1 or 0 < limit <= _MAX_QUOTA):
            if limit <= 0:
                return error(
                    400, f"bad request: invalid non-positive value for quota limit, value={limit}"
                )
            return error(
                400,
                f"bad request: exceeded 1024TB, which is 1125899906842624 Bytes, value={limit}",
            )
        name = project.get("project_name") or ""
        if not 1 <= len(name) <= 255:
            return error(
                400,
                f"Project name {name} is illegal in length. (greater than 255 or less than 1)",
            )
        if not _NAME.match(name):
            return error(400, "project name is not in lower case or contains illegal characters")
        if self.project(name):
            return error(409, f"The project named {name} already exists")
        stored = self.seed_project(name, storage=limit)
        stored.metadata = {**metadata}
        return Reply(201, headers={"Location": f"/api/v2.0/projects/{stored.project_id}"})

    def op_updateProject(
        self,
        user: User | None,
        project_name_or_id: str,
        project: dict[str, Any],
        **params: Any,
    ) -> Reply:
        """handler/project.go UpdateProject: merges metadata; storage_limit is ignored."""
        if user is None:
            return error(401, "unauthorized")
        stored = self._project_by(project_name_or_id, params.get("X-Is-Resource-Name"))
        if stored is None:
            return error(404, f"project {project_name_or_id} not found")
        if not user.sysadmin:
            return error(403, "forbidden")
        for key, value in (project.get("metadata") or {}).items():
            if value is not None and key not in ("proxy_speed_kb", "max_upstream_conn"):
                stored.metadata[key] = value
        return Reply(200)

    def op_deleteProject(self, user: User | None, project_name_or_id: str, **params: Any) -> Reply:
        """handler/project.go DeleteProject: refused while the project holds repositories."""
        if user is None:
            return error(401, "unauthorized")
        stored = self._project_by(project_name_or_id, params.get("X-Is-Resource-Name"))
        if stored is None:
            return error(404, f"project {project_name_or_id} not found")
        if not user.sysadmin:
            return error(403, "forbidden")
        if stored.repo_count > 0:
            return error(
                412, "precondition failed: the project contains repositories, can not be deleted"
            )
        del self.projects[stored.project_id]
        for robot_id in [r.robot_id for r in self.robots.values()]:
            if self.robots[robot_id].project_id == stored.project_id:
                del self.robots[robot_id]
        quota = self.quota_of(stored.project_id)
        if quota:
            del self.quotas[quota.quota_id]
        return Reply(200)

    def _quota_api(self, quota: StoredQuota) -> dict[str, Any]:
        project = self.projects[quota.project_id]
        return {
            "id": quota.quota_id,
            "ref": {"id": project.project_id, "name": project.name, "owner_name": "admin"},
            "hard": {"storage": quota.storage},
            "used": {"storage": 0},
            "creation_time": quota.created,
            "update_time": quota.created,
        }

    def op_listQuotas(
        self,
        user: User | None,
        reference: str = "",
        reference_id: str = "",
        page: int = 1,
        page_size: int = 10,
        **_: Any,
    ) -> Reply:
        """handler/quota.go ListQuotas (system access: quota list)."""
        if user is None:
            return error(401, "unauthorized")
        if not user.sysadmin:
            return error(403, user.username)
        found = [
            q
            for q in sorted(self.quotas.values(), key=lambda q: q.quota_id)
            if (not reference or reference == "project")
            and (not reference_id or reference_id == str(q.project_id))
        ]
        items, headers = self._page(found, page, page_size)
        return Reply(200, [self._quota_api(q) for q in items], headers)

    def op_updateQuota(self, user: User | None, id: int, hard: dict[str, Any], **_: Any) -> Reply:
        """handler/quota.go UpdateQuota, controller/quota/driver/project Validate."""
        if user is None:
            return error(401, "unauthorized")
        if not user.sysadmin:
            return error(403, user.username)
        limits = hard.get("hard") or {}
        if not limits:
            return error(400, "hard required in body")
        quota = self.quotas.get(id)
        if quota is None:
            return error(404, f"quota {id} not found")
        for resource, value in limits.items():
            if resource != "storage":
                return error(400, f"resource {resource} not support")
            if value <= 0 and value != -1:
                return error(400, f"invalid non-positive value for quota limit, value={value}")
            if value > _MAX_QUOTA:
                return error(
                    400, f"exceeded 1024TB, which is 1125899906842624 Bytes, value={value}"
                )
        if "storage" not in limits:
            return error(400, "resource storage not found")
        quota.storage = limits["storage"]
        return Reply(200)

    def op_ListRobot(
        self,
        user: User | None,
        q: str = "",
        page: int = 1,
        page_size: int = 10,
        **_: Any,
    ) -> Reply:
        """handler/robot.go ListRobot: system robots unless q=Level=project,ProjectID=N."""
        if user is None:
            return error(401, "unauthorized")
        keywords = dict(part.split("=", 1) for part in q.split(",") if part)
        unknown = set(keywords) - {"Level", "ProjectID"}
        if unknown:
            self.violations.append(f"robot query keys {sorted(unknown)} are not modelled")
            return error(400, "not modelled")
        level = keywords.get("Level", "system")
        if level not in ("system", "project"):
            return error(400, "bad request error level input")
        project_id = 0
        if level == "project":
            if "ProjectID" not in keywords:
                return error(400, "must with project ID when to query project robots")
            project_id = int(keywords["ProjectID"])
        if not user.sysadmin:
            return error(403, user.username)
        found = [
            r
            for r in sorted(self.robots.values(), key=lambda r: r.robot_id)
            if r.project_id == project_id
        ]
        items, headers = self._page(found, page, page_size)
        return Reply(200, [self._robot_api(r) for r in items], headers)

    def _check_robot(
        self, duration: int | None, level: str, permissions: list[dict[str, Any]]
    ) -> Reply | None:
        """robotAPI.validate (handler/robot.go)."""
        if duration is not None and not (duration == -1 or 0 < duration < 2**31 - 1):
            return error(
                400,
                f"bad request error duration input: {duration}, duration must be either "
                "-1(Never) or a positive integer",
            )
        if level not in ("system", "project"):
            return error(400, f"bad request error level input: {level}")
        if not permissions:
            return error(400, "bad request empty permission")
        if any(not p.get("access") for p in permissions):
            return error(400, "bad request empty access")
        if level == "project" and len(permissions) > 1:
            return error(400, "bad request permission")
        for perm in permissions:
            policies = {"system": SYSTEM_POLICIES, "project": PROJECT_POLICIES}.get(
                perm.get("kind", "")
            )
            if policies is None:
                return error(400, f"bad request permission level: {perm.get('kind', '')}")
            for acc in perm["access"]:
                if (acc.get("resource"), acc.get("action")) not in policies:
                    return error(
                        400, f"bad request permission: {acc.get('resource')}:{acc.get('action')}"
                    )
        return None

    def _scopes(
        self, permissions: list[dict[str, Any]]
    ) -> tuple[list[tuple[str, str, list[dict[str, str]]]], Reply | None]:
        """controller/robot toScope: project names to /project/ID; unknown ones are 404."""
        scopes = []
        for perm in permissions:
            kind, namespace = perm["kind"], perm.get("namespace", "")
            if kind == "system":
                if namespace != "/":
                    return [], error(400, "unknown namespace")
                scope = "/system"
            elif namespace == "*":
                scope = "/project/*"
            else:
                project = self.project(namespace)
                if project is None:
                    return [], error(404, f"project {namespace} not found")
                scope = f"/project/{project.project_id}"
            scopes.append((kind, scope, [dict(a) for a in perm["access"]]))
        return scopes, None

    def op_CreateRobot(self, user: User | None, robot: dict[str, Any], **_: Any) -> Reply:
        """handler/robot.go CreateRobot, controller/robot Create (secret generated; the
        request's `secret` and `disable` are not used)."""
        name = robot.get("name", "")
        if not _NAME.match(name):
            return error(400, "robot name is not in lower case or contains illegal characters")
        duration = robot.get("duration", 0)
        level = robot.get("level", "")
        permissions = robot.get("permissions") or []
        problem = self._check_robot(duration, level, permissions)
        if problem:
            return problem
        if user is None:
            return error(401, "unauthorized")
        if not user.sysadmin:
            return error(403, user.username)
        project_id = 0
        if level == "project":
            project = self.project(permissions[0].get("namespace", ""))
            if project is None:
                return error(404, f"project {permissions[0].get('namespace')} not found")
            project_id, name = project.project_id, f"{project.name}+{name}"
        if any(r.name == name and r.project_id == project_id for r in self.robots.values()):
            return error(409, f"robot account {project_id}:{name} already exists")
        scopes, problem = self._scopes(permissions)
        if problem:
            return problem
        now = time.time()
        stored = StoredRobot(
            robot_id=next(self._ids),
            name=name,
            level=level,
            project_id=project_id,
            description=robot.get("description", ""),
            duration=duration,
            expires_at=-1 if duration == -1 else int(now) + duration * 86400,
            secret=_secret(),
            scopes=scopes,
            created_at=now,
        )
        self.robots[stored.robot_id] = stored
        return Reply(
            201,
            {
                "id": stored.robot_id,
                "name": self._full(stored),
                "secret": stored.secret,
                "creation_time": stored.created,
                "expires_at": stored.expires_at,
            },
            {"Location": f"/api/v2.0/robots/{stored.robot_id}"},
        )

    def op_GetRobotByID(self, user: User | None, robot_id: int, **_: Any) -> Reply:
        if user is None:
            return error(401, "unauthorized")
        stored = self.robots.get(robot_id)
        if stored is None:
            return error(404, f"robot {robot_id} not found")
        if not user.sysadmin:
            return error(403, user.username)
        return Reply(200, self._robot_api(stored))

    def op_UpdateRobot(
        self, user: User | None, robot_id: int, robot: dict[str, Any], **_: Any
    ) -> Reply:
        """handler/robot.go UpdateRobot / updateV2Robot."""
        if user is None:
            return error(401, "unauthorized")
        stored = self.robots.get(robot_id)
        if stored is None:
            return error(404, f"robot {robot_id} not found")
        if not stored.editable:
            return error(403, "editing of legacy robot is not allowed")
        duration = robot.get("duration")
        if duration is None:
            duration = stored.duration
        permissions = robot.get("permissions") or []
        problem = self._check_robot(duration, robot.get("level", ""), permissions)
        if problem:
            return problem
        if not user.sysadmin:
            return error(403, user.username)
        if robot.get("level") != stored.level or robot.get("name") != self._full(stored):
            return error(400, "cannot update the level or name of robot")
        scopes, problem = self._scopes(permissions)
        if problem:
            return problem
        if duration != stored.duration:
            stored.duration = duration
            stored.expires_at = -1 if duration == -1 else int(stored.created_at) + duration * 86400
        stored.description = robot.get("description", "")
        stored.disable = bool(robot.get("disable", False))
        stored.scopes = scopes
        return Reply(200)

    def op_RefreshSec(
        self, user: User | None, robot_id: int, robotSec: dict[str, Any], **_: Any
    ) -> Reply:
        """handler/robot.go RefreshSec: a given secret is checked and kept (answer without
        it); none makes a new one, sent once."""
        if user is None:
            return error(401, "unauthorized")
        stored = self.robots.get(robot_id)
        if stored is None:
            return error(404, f"robot {robot_id} not found")
        if not user.sysadmin:
            return error(403, user.username)
        given = robotSec.get("secret") or ""
        if given:
            ok = 8 <= len(given) <= 128 and all(
                re.search(p, given) for p in ("[a-z]", "[A-Z]", r"\d")
            )
            if not ok:
                return error(
                    400,
                    "the secret must be 8-128, inclusively, characters long with at least 1 "
                    "uppercase letter, 1 lowercase letter and 1 number",
                )
            stored.secret = given
            return Reply(200, {})
        stored.secret = _secret()
        return Reply(200, {"secret": stored.secret})

    def op_DeleteRobot(self, user: User | None, robot_id: int, **_: Any) -> Reply:
        if user is None:
            return error(401, "unauthorized")
        stored = self.robots.get(robot_id)
        if stored is None:
            return error(404, f"robot {robot_id} not found")
        if not user.sysadmin:
            return error(403, user.username)
        del self.robots[robot_id]
        return Reply(200)


def _body_name(op: Operation) -> str:
    return next((p["name"] for p in op.parameters if p["in"] == "body"), "")


# --- HTTPS ---------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out, payload = self.server.standin.handle(self.command, self.path, headers, body)
        self.send_response(status)
        for key, value in out.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: HarborStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that refused our certificate mid-handshake is what some tests want


@contextlib.contextmanager
def serve(standin: HarborStandIn, cert: Path, key: Path) -> Iterator[str]:
    """Serve `standin` over HTTPS on 127.0.0.1; yields its base URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.standin = standin
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
