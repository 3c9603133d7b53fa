# Copyright: airlock developers
# Apache-2.0
"""A small client for Harbor's v2.0 REST API (``/api/v2.0``), for the harbor_* modules.

Standard library only (urllib, ssl, json): it runs wherever the module runs. HTTPS with
full verification against one CA file (the certificate chain and the host name of the
URL); there is deliberately no way to skip verification. Basic auth as one user (Harbor's
API accepts it without a session or CSRF token). Every failure is a HarborError whose text
is one line a user can act on: the request, Harbor's status and ``errors[].message``, and
what to check.

What this was tested against: a stand-in built from Harbor v2.15.2's published API
description (goharbor/harbor ``api/v2.0/swagger.yaml`` at commit 080b0220574c), which
validates every request and response against that file's schemas
(``tests/unit/registry``). It has never talked to a running Harbor. Behaviour the
description does not state was read from Harbor's Go source at the same commit and is
noted where it is relied on (``src/server/v2.0/handler/*.go``).
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

API_PREFIX = "/api/v2.0"

#: Harbor's default ``robot_name_prefix``: a robot named NAME logs in as ``robot$NAME``.
DEFAULT_ROBOT_PREFIX = "robot$"

#: Options every harbor_* module accepts to reach Harbor (doc fragment airlock.cluster.harbor).
CONNECTION_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "url": {"type": "str", "required": True},
    "ca_cert": {"type": "path", "required": True},
    "username": {"type": "str", "default": "admin"},
    "password": {"type": "str", "required": True, "no_log": True},
    "timeout": {"type": "int", "default": 30},
}

#: Harbor's rule for project and robot names (src/pkg/project/manager.go, validateName in
#: src/server/v2.0/handler/robot.go).
NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")

#: What a container runtime needs to pull from a project. Harbor checks exactly this for
#: every registry read (GET/HEAD of manifests and blobs): src/server/middleware/v2auth
#: (auth.go, access.go) and the token service's repository filter
#: (src/core/service/token/creator.go). ``artifact:read`` is for the REST API's artifact
#: listing, not for pulls.
PULL_ACCESS: tuple[tuple[str, str], ...] = (("repository", "pull"),)

#: The read-only (resource, action) pairs Harbor accepts for a robot's project permission
#: (PoliciesMap[ScopeProject] in src/common/rbac/const.go with actions pull/read/list).
#: Anything that writes or administers (push, create, update, delete, ...) is refused.
READ_ONLY_PROJECT_ACCESS: frozenset[tuple[str, str]] = frozenset(
    {
        ("repository", "pull"),
        ("repository", "read"),
        ("repository", "list"),
        ("artifact", "read"),
        ("artifact", "list"),
        ("tag", "list"),
        ("accessory", "list"),
        ("artifact-addition", "read"),
        ("scan", "read"),
        ("sbom", "read"),
        ("label", "read"),
        ("label", "list"),
        ("metadata", "read"),
        ("metadata", "list"),
        ("project", "read"),
        ("quota", "read"),
        ("log", "list"),
    }
)

_MAX_ERROR_TEXT = 600


class HarborError(Exception):
    """A request Harbor refused or that never reached it; ``str()`` is one line."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(" ".join(message.split()))
        self.status = status


class HarborTLSError(HarborError):
    """Harbor's certificate did not verify against the CA file (or the file is unusable)."""


# --- the objects the modules use ----------------------------------------------------------
@dataclass(frozen=True)
class Access:
    resource: str
    action: str
    effect: str = "allow"

    def to_api(self) -> dict[str, str]:
        return {"resource": self.resource, "action": self.action, "effect": self.effect}


@dataclass(frozen=True)
class Permission:
    """A robot's access within one namespace (kind ``project``: a project's name)."""

    kind: str
    namespace: str
    access: tuple[Access, ...]

    def to_api(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "access": [a.to_api() for a in self.access],
        }


def grants(permissions: Iterable[Permission]) -> frozenset[tuple[str, str, str, str, str]]:
    """Permissions as a set of (kind, namespace, resource, action, effect): order-free.

    Harbor treats an empty effect as ``allow`` (Policy.GetEffect, src/pkg/permission/types).
    """
    return frozenset(
        (p.kind, p.namespace, a.resource, a.action, a.effect or "allow")
        for p in permissions
        for a in p.access
    )


@dataclass(frozen=True)
class Project:
    project_id: int
    name: str
    public: bool
    repo_count: int = 0

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Project:
        metadata = data.get("metadata") or {}
        return cls(
            project_id=int(data["project_id"]),
            name=str(data["name"]),
            public=str(metadata.get("public", "false")).lower() == "true",
            repo_count=int(data.get("repo_count") or 0),
        )


@dataclass(frozen=True)
class Quota:
    quota_id: int
    storage: int | None  # bytes; -1 is unlimited

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Quota:
        hard = data.get("hard") or {}
        storage = hard.get("storage")
        return cls(quota_id=int(data["id"]), storage=None if storage is None else int(storage))


@dataclass(frozen=True)
class Robot:
    robot_id: int
    name: str  # as Harbor shows it: with the robot prefix (robot$NAME)
    level: str
    duration: int | None
    expires_at: int | None
    disable: bool
    description: str
    editable: bool
    permissions: tuple[Permission, ...] = field(default=())

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Robot:
        permissions = tuple(
            Permission(
                kind=str(p.get("kind", "")),
                namespace=str(p.get("namespace", "")),
                access=tuple(
                    Access(
                        str(a.get("resource", "")), str(a.get("action", "")), a.get("effect") or ""
                    )
                    for a in p.get("access") or []
                ),
            )
            for p in data.get("permissions") or []
        )
        return cls(
            robot_id=int(data["id"]),
            name=str(data["name"]),
            level=str(data.get("level", "")),
            duration=data.get("duration"),
            expires_at=data.get("expires_at"),
            disable=bool(data.get("disable", False)),
            description=str(data.get("description") or ""),
            editable=bool(data.get("editable", True)),
            permissions=permissions,
        )

    def to_result(self) -> dict[str, Any]:
        """What a module returns about the robot (never a secret: Harbor never sends it)."""
        return {
            "id": self.robot_id,
            "name": self.name,
            "level": self.level,
            "duration": self.duration,
            "expires_at": self.expires_at,
            "disable": self.disable,
            "description": self.description,
            "permissions": [p.to_api() for p in self.permissions],
        }

    def expired(self, now: float | None = None) -> bool:
        if self.expires_at in (None, -1):
            return False
        return int(self.expires_at or 0) <= (time.time() if now is None else now)


@dataclass(frozen=True)
class CreatedRobot:
    robot_id: int
    name: str
    secret: str
    expires_at: int | None


# --- HTTP ---------------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Harbor's API does not redirect; following one would send the password elsewhere."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> None:
        return None


def _harbor_messages(raw: bytes) -> str:
    """Harbor's ``{"errors": [{"code": ..., "message": ...}]}`` as text; else the raw body."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:_MAX_ERROR_TEXT]
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        parts = [
            str(e.get("message") or e.get("code") or "")
            for e in data["errors"]
            if isinstance(e, dict)
        ]
        return "; ".join(p for p in parts if p)[:_MAX_ERROR_TEXT]
    return text[:_MAX_ERROR_TEXT]


_HINTS = {
    401: "Harbor did not accept user {user}'s password (a wrong password makes Harbor treat "
    "the request as anonymous)",
    403: "user {user} lacks the permission; the harbor_* modules need a Harbor system "
    "administrator",
}


class Harbor:
    """One Harbor, reached as one user. Methods raise HarborError."""

    def __init__(
        self,
        url: str,
        ca_file: str,
        username: str,
        password: str,
        timeout: float = 30,
        page_size: int = 100,
    ) -> None:
        parsed = urllib.parse.urlsplit(url.strip())
        if parsed.scheme != "https" or not parsed.hostname:
            raise HarborError(
                f"url {url!r}: give Harbor's https:// address (https://NAME[:PORT]); the "
                "password is never sent without TLS"
            )
        if parsed.username or parsed.query or parsed.fragment or parsed.path not in ("", "/"):
            raise HarborError(
                f"url {url!r}: give only https://NAME[:PORT] (no path, query or user); "
                f"the API is under {API_PREFIX}"
            )
        self.base = f"https://{parsed.netloc}"
        self.ca_file = ca_file
        self.username = username
        self.timeout = timeout
        self.page_size = page_size
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._authorization = f"Basic {token}"
        try:
            # cafile only: the system's CAs are not trusted; check_hostname and
            # CERT_REQUIRED are create_default_context's defaults and nothing turns them off.
            context = ssl.create_default_context(cafile=ca_file)
        except FileNotFoundError:
            raise HarborTLSError(f"ca_cert {ca_file}: no such file") from None
        except (ssl.SSLError, OSError) as exc:
            raise HarborTLSError(
                f"ca_cert {ca_file}: not a usable PEM CA certificate ({exc})"
            ) from None
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirect()
        )

    # -- transport ---------------------------------------------------------------------
    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        full = f"{self.base}{API_PREFIX}{path}"
        if query:
            full += "?" + urllib.parse.urlencode(query)
        return full

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Response:
        url = self.url(path, query)
        request_id = uuid.uuid4().hex
        send = {"Accept": "application/json", "X-Request-Id": request_id, **(headers or {})}
        if auth:
            send["Authorization"] = self._authorization
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            send["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=send)
        what = f"{method} {url}"
        try:
            with self._opener.open(req, timeout=self.timeout) as answer:
                raw = answer.read()
                status = answer.status
                answer_headers = {k.lower(): v for k, v in answer.headers.items()}
        except urllib.error.HTTPError as exc:
            raw = exc.read() if exc.fp is not None else b""
            message = _harbor_messages(raw) or exc.reason
            hint = _HINTS.get(exc.code, "").format(user=self.username)
            raise HarborError(
                f"{what} answered {exc.code} {exc.reason}: {message}"
                + (f"; {hint}" if hint else "")
                + f" (X-Request-Id {request_id} in Harbor's core log)",
                exc.code,
            ) from None
        except urllib.error.URLError as exc:
            raise self._transport_error(what, exc.reason) from None
        except TimeoutError:
            raise HarborError(f"{what}: no answer within {self.timeout}s") from None
        except (ssl.SSLError, OSError) as exc:
            raise self._transport_error(what, exc) from None
        parsed: Any = None
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError:
                raise HarborError(
                    f"{what} answered {status} with a body that is not JSON: "
                    f"{raw[:200].decode('utf-8', 'replace')!r}; is {self.base} Harbor?"
                ) from None
        return Response(status, answer_headers, parsed)

    def _transport_error(self, what: str, reason: Any) -> HarborError:
        host = urllib.parse.urlsplit(self.base).netloc
        if isinstance(reason, ssl.SSLCertVerificationError):
            detail = (reason.verify_message or str(reason)).rstrip(".")
            if "Hostname mismatch" in detail or "IP address mismatch" in detail:
                fix = f"Harbor's certificate must name {host.rsplit(':', 1)[0]} as a SAN"
            else:
                fix = (
                    f"is {self.ca_file} the CA that signed Harbor's certificate? check with "
                    f"openssl s_client -connect {host} -CAfile {self.ca_file}"
                )
            return HarborTLSError(
                f"{what}: TLS verification against ca_cert {self.ca_file} failed: {detail}; {fix}"
            )
        if isinstance(reason, ssl.SSLError):
            return HarborTLSError(
                f"{what}: TLS failed ({reason}) with ca_cert {self.ca_file}; does {host} "
                "serve HTTPS?"
            )
        if isinstance(reason, TimeoutError):
            return HarborError(f"{what}: no answer within {self.timeout}s")
        return HarborError(f"{what}: cannot reach Harbor: {reason}")

    def _paged(self, path: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a listing, page by page (``X-Total-Count`` says how many)."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.request(
                "GET", path, query={**query, "page": page, "page_size": self.page_size}
            )
            batch = answer.body or []
            items.extend(batch)
            total = answer.headers.get("x-total-count")
            if len(batch) < self.page_size or (total is not None and len(items) >= int(total)):
                return items
            page += 1

    # -- who we are ----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /health`` (no authentication): ``{"status": ..., "components": [...]}``."""
        return self.request("GET", "/health", auth=False).body or {}

    def current_user(self) -> dict[str, Any]:
        """``GET /users/current``: fails with 401 when Harbor did not accept the password.

        Harbor treats a wrong password as an anonymous request rather than refusing it
        (src/server/middleware/security), and anonymous requests may still list public
        projects; this call is what tells the two apart.
        """
        return self.request("GET", "/users/current").body or {}

    def require_admin(self) -> None:
        user = self.current_user()
        if not (user.get("sysadmin_flag") or user.get("admin_role_in_auth")):
            raise HarborError(
                f"user {self.username} is not a Harbor system administrator; the harbor_* "
                "modules create system-level robot accounts and set project quotas, which "
                "need one"
            )

    # -- projects -------------------------------------------------------------------------
    def find_project(self, name: str) -> Project | None:
        """The project named exactly ``name``, or None.

        ``GET /projects?name=`` matches by substring (ListProjects in handler/project.go),
        so the exact name is picked here. (``GET /projects/{name}`` answers 404 for a
        missing project, but the API description documents no 404 for it.)
        """
        for data in self._paged("/projects", {"name": name}):
            if data.get("name") == name:
                return Project.from_api(data)
        return None

    def create_project(self, name: str, public: bool, storage_limit: int | None) -> None:
        body: dict[str, Any] = {
            "project_name": name,
            "metadata": {"public": "true" if public else "false"},
        }
        if storage_limit is not None:
            body["storage_limit"] = storage_limit
        self.request("POST", "/projects", body=body)

    def set_project_public(self, name: str, public: bool) -> None:
        """``PUT /projects/{name}``: Harbor merges the metadata sent into what it has."""
        self.request(
            "PUT",
            f"/projects/{urllib.parse.quote(name, safe='')}",
            headers={"X-Is-Resource-Name": "true"},
            body={"metadata": {"public": "true" if public else "false"}},
        )

    def delete_project(self, name: str) -> None:
        self.request(
            "DELETE",
            f"/projects/{urllib.parse.quote(name, safe='')}",
            headers={"X-Is-Resource-Name": "true"},
        )

    def project_quota(self, project_id: int) -> Quota | None:
        """The project's quota; None when Harbor keeps none (quota per project disabled)."""
        found = self._paged("/quotas", {"reference": "project", "reference_id": str(project_id)})
        return Quota.from_api(found[0]) if found else None

    def set_storage_quota(self, quota_id: int, storage: int) -> None:
        """``PUT /quotas/{id}``; ``PUT /projects`` ignores storage_limit (UpdateProject)."""
        self.request("PUT", f"/quotas/{quota_id}", body={"hard": {"storage": storage}})

    # -- robots ---------------------------------------------------------------------------
    def system_robots(self) -> list[Robot]:
        return [Robot.from_api(r) for r in self._paged("/robots", {"q": "Level=system"})]

    def find_robot(self, full_name: str) -> Robot | None:
        """The system-level robot Harbor shows as ``full_name`` (e.g. ``robot$pull``)."""
        for robot in self.system_robots():
            if robot.name == full_name:
                return robot
        return None

    def get_robot(self, robot_id: int) -> Robot:
        return Robot.from_api(self.request("GET", f"/robots/{robot_id}").body or {})

    def create_robot(
        self, name: str, description: str, duration: int, permissions: list[Permission]
    ) -> CreatedRobot:
        """``POST /robots`` at system level; Harbor generates the secret and sends it once.

        (RobotCreate has a ``secret`` field, but CreateRobot in v2.15.2 ignores it.)
        """
        answer = self.request(
            "POST",
            "/robots",
            body={
                "name": name,
                "description": description,
                "level": "system",
                "duration": duration,
                "permissions": [p.to_api() for p in permissions],
            },
        )
        data = answer.body or {}
        if not data.get("secret"):
            raise HarborError(
                f"POST {self.url('/robots')} answered {answer.status} without the robot's "
                "secret; the robot may exist now: refresh its secret (refresh_secret)"
            )
        return CreatedRobot(
            robot_id=int(data["id"]),
            name=str(data.get("name", "")),
            secret=str(data["secret"]),
            expires_at=data.get("expires_at"),
        )

    def update_robot(
        self, robot: Robot, description: str, duration: int, permissions: list[Permission]
    ) -> None:
        """``PUT /robots/{id}``: name and level must be sent unchanged (updateV2Robot)."""
        self.request(
            "PUT",
            f"/robots/{robot.robot_id}",
            body={
                "name": robot.name,
                "level": robot.level,
                "description": description,
                "duration": duration,
                "disable": False,
                "permissions": [p.to_api() for p in permissions],
            },
        )

    def refresh_robot_secret(self, robot_id: int) -> str:
        """``PATCH /robots/{id}`` with no secret: Harbor makes a new one and sends it once."""
        data = self.request("PATCH", f"/robots/{robot_id}", body={}).body or {}
        secret = str(data.get("secret") or "")
        if not secret:
            raise HarborError(
                f"PATCH {self.url(f'/robots/{robot_id}')} did not return the new secret"
            )
        return secret

    def delete_robot(self, robot_id: int) -> None:
        self.request("DELETE", f"/robots/{robot_id}")


def connect(params: dict[str, Any], page_size: int = 100) -> Harbor:
    """A client from a module's connection options; raises HarborError."""
    return Harbor(
        url=params["url"],
        ca_file=params["ca_cert"],
        username=params["username"],
        password=params["password"],
        timeout=params["timeout"],
        page_size=page_size,
    )
