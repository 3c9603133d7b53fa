"""The stand-in itself: its API file is Harbor's, and it refuses what that file does not allow.

If these fail, the module tests prove nothing: a stand-in that accepted anything would pass
any client.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from .harbor_standin import ADMIN_PASSWORD, SPEC_FILE, ApiSpec, HarborStandIn, Reply

HERE = Path(__file__).resolve().parent
UPSTREAM_COMMIT = "080b0220574cc853ae1e2946ce7a5610ba855757"
# Operations of the cut's paths that the modules do not call (so the stand-in lacks them).
NOT_USED = {"headProject", "getProject", "getQuota"}


def test_api_file_names_its_source_and_licence():
    header = SPEC_FILE.read_text(encoding="utf-8").split("\n---\n", 1)[0]
    assert f"goharbor/harbor/blob/{UPSTREAM_COMMIT}/api/v2.0/swagger.yaml" in header
    assert "tag v2.15.2" in header
    assert "Apache License, Version 2.0" in header
    doc = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    assert doc["swagger"] == "2.0" and doc["basePath"] == "/api/v2.0"


def test_every_operation_of_the_file_is_modelled_or_deliberately_not():
    spec = ApiSpec()
    ids = {op.operation_id for op in spec.operations}
    modelled = {name[3:] for name in dir(HarborStandIn) if name.startswith("op_")}
    assert modelled <= ids, f"handlers for operations the file lacks: {modelled - ids}"
    assert ids - modelled == NOT_USED


def _raw(harbor, method, path, body=None, ctype="application/json", auth=True):
    """A request as sent by hand (not through the client), with the test CA."""
    context = ssl.create_default_context(cafile=str(harbor.ca))
    headers = {"Content-Type": ctype} if body is not None else {}
    if auth:
        import base64

        token = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(harbor.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, context=context, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


# Requests Harbor's API file does not allow, and the violation each must produce.
BAD_REQUESTS = [
    pytest.param(
        "POST",
        "/api/v2.0/projects",
        {"project_name": "x", "metadata": {"public": "false"}, "publik": True},
        "Additional properties are not allowed ('publik' was unexpected)",
        id="unknown-field",
    ),
    pytest.param(
        "POST",
        "/api/v2.0/projects",
        {"project_name": "x", "metadata": {"public": False}},
        "metadata/public: False is not of type 'string'",
        id="public-as-bool",
    ),
    pytest.param(
        "POST",
        "/api/v2.0/projects",
        {"project_name": "x", "storage_limit": "10G"},
        "storage_limit: '10G' is not valid",
        id="storage-limit-as-string",
    ),
    pytest.param(
        "POST",
        "/api/v2.0/projects",
        {"project_name": "x", "storage_limit": 2**63},
        "storage_limit",
        id="storage-limit-beyond-int64",
    ),
    pytest.param("GET", "/api/v2.0/projects?nme=x", None, "'nme' is not declared", id="query"),
    pytest.param(
        "GET", "/api/v2.0/projects?page_size=500", None, "is above 100", id="page-size-max"
    ),
    pytest.param("GET", "/api/v2.0/robots/abc", None, "is not a integer", id="path-type"),
    pytest.param(
        "POST",
        "/api/v2.0/robots",
        {
            "name": "r",
            "level": "system",
            "duration": -1,
            "permissions": [
                {"kind": "project", "namespace": "library", "access": [{"verb": "pull"}]}
            ],
        },
        "('verb' was unexpected)",
        id="robot-access-field",
    ),
    pytest.param("GET", "/api/v2.0/systeminfo", None, "no such operation", id="not-in-file"),
    pytest.param("GET", "/api/v2.0/health", b"{}", "takes no body", id="body-on-get"),
    pytest.param("PUT", "/api/v2.0/quotas/2", None, "requires a body", id="missing-body"),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), BAD_REQUESTS)
def test_a_request_outside_the_file_is_a_violation(harbor, method, path, body, expected):
    status = _raw(harbor, method, path, body)
    assert status in (400, 404)
    assert any(expected in v for v in harbor.standin.violations), harbor.standin.violations
    harbor.standin.violations.clear()  # seen: the fixture would fail the test otherwise


def test_a_body_not_sent_as_json_is_a_violation(harbor):
    _raw(harbor, "POST", "/api/v2.0/projects", b'{"project_name": "x"}', ctype="text/plain")
    assert any("consumes application/json" in v for v in harbor.standin.violations)
    harbor.standin.violations.clear()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(404, {"errors": [{"code": "NOT_FOUND", "message": "x"}]}), "declares no 404"),
        (Reply(200, {"status": "healthy", "colour": "green"}), "'colour' was unexpected"),
        (Reply(200, {"status": 1}), "1 is not of type 'string'"),
    ],
    ids=["undeclared-status", "extra-field", "wrong-type"],
)
def test_an_answer_outside_the_file_is_a_violation(harbor, monkeypatch, reply, expected):
    monkeypatch.setattr(HarborStandIn, "op_getHealth", lambda self, **_: reply)
    _raw(harbor, "GET", "/api/v2.0/health", auth=False)
    assert any(expected in v for v in harbor.standin.violations), harbor.standin.violations
    harbor.standin.violations.clear()


def test_a_wrong_password_is_anonymous_as_in_harbor(harbor):
    """Harbor lets a wrong password through as anonymous (public projects still list)."""
    standin = harbor.standin
    assert standin._user("Basic " + "YWRtaW46bm9wZQ==") is None  # admin:nope
    result = standin.op_listProjects(user=None)
    assert [p["name"] for p in result.body] == ["library"]
    assert standin.op_getCurrentUserInfo(user=None).status == 401
