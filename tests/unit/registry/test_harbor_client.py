"""module_utils/harbor.py against the stand-in: TLS, authentication, errors, listings.

Every failure must be one line that names what to check; the password never appears.
"""

from __future__ import annotations

import socket

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils.harbor import (
    Access,
    Harbor,
    HarborError,
    HarborTLSError,
    Permission,
)

from .harbor_standin import ADMIN_PASSWORD, HarborStandIn, Reply, serve


def client(harbor, **overrides) -> Harbor:
    args = {
        "url": harbor.url,
        "ca_file": str(harbor.ca),
        "username": "admin",
        "password": ADMIN_PASSWORD,
        "timeout": 10,
        **overrides,
    }
    return Harbor(**args)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    assert ADMIN_PASSWORD not in text
    return text


def test_health_needs_no_credentials(harbor):
    health = client(harbor, password="wrong").health()
    assert health["status"] == "healthy"
    assert {c["name"] for c in health["components"]} >= {"core", "database", "registry"}


def test_admin_is_recognised(harbor):
    c = client(harbor)
    assert c.current_user()["username"] == "admin"
    c.require_admin()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"password": "wrong"},
            ["GET ", "/api/v2.0/users/current answered 401", "user admin's password"],
        ),
        (
            {"username": "dev", "password": "Developer1"},
            ["user dev is not a Harbor system administrator"],
        ),
    ],
    ids=["wrong-password", "not-admin"],
)
def test_who_we_are_fails_with_one_clear_line(harbor, overrides, expected):
    with pytest.raises(HarborError) as failed:
        client(harbor, **overrides).require_admin()
    text = one_line(failed)
    for fragment in expected:
        assert fragment in text


def test_a_ca_that_did_not_sign_harbor_is_named(harbor, pki):
    with pytest.raises(HarborTLSError) as failed:
        client(harbor, ca_file=str(pki.other_ca)).health()
    text = one_line(failed)
    assert f"ca_cert {pki.other_ca}" in text
    assert "certificate verify failed" in text or "unable to get local issuer" in text
    assert f"-CAfile {pki.other_ca}" in text


def test_a_certificate_for_another_name_is_refused(pki):
    with serve(HarborStandIn(), pki.wrong_name_cert, pki.wrong_name_key) as url:
        c = Harbor(url, str(pki.ca), "admin", ADMIN_PASSWORD, timeout=10)
        with pytest.raises(HarborTLSError) as failed:
            c.health()
    text = one_line(failed)
    assert "mismatch" in text
    assert "must name 127.0.0.1 as a SAN" in text


@pytest.mark.parametrize(
    ("ca_name", "content", "expected"),
    [
        ("missing.crt", None, "no such file"),
        ("garbage.crt", b"not a certificate\n", "not a usable PEM CA certificate"),
    ],
    ids=["missing", "garbage"],
)
def test_an_unusable_ca_file_is_named(harbor, tmp_path, ca_name, content, expected):
    ca = tmp_path / ca_name
    if content is not None:
        ca.write_bytes(content)
    with pytest.raises(HarborTLSError) as failed:
        client(harbor, ca_file=str(ca))
    text = one_line(failed)
    assert str(ca) in text and expected in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080", "https://"),
        ("127.0.0.1", "https://"),
        ("https://127.0.0.1/harbor", "no path"),
        ("https://admin@127.0.0.1", "no path, query or user"),
    ],
)
def test_only_a_plain_https_address_is_accepted(harbor, url, expected):
    with pytest.raises(HarborError) as failed:
        client(harbor, url=url)
    assert expected in one_line(failed)


def test_nothing_listening_is_said_so(harbor):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(HarborError) as failed:
        client(harbor, url=f"https://127.0.0.1:{port}").health()
    assert "cannot reach Harbor" in one_line(failed)


@pytest.mark.parametrize(
    ("operation", "status", "message", "call"),
    [
        (
            "createProject",
            500,
            "internal server error",
            lambda c: c.create_project("p", False, None),
        ),
        (
            "updateQuota",
            400,
            "exceeded 1024TB, which is 1125899906842624 Bytes",
            lambda c: c.set_storage_quota(2, 1),
        ),
        (
            "CreateRobot",
            403,
            "admin",
            lambda c: c.create_robot(
                "r", "", -1, [Permission("project", "library", (Access("repository", "pull"),))]
            ),
        ),
    ],
    ids=["500", "400", "403"],
)
def test_harbors_error_message_is_passed_on(harbor, operation, status, message, call):
    harbor.standin.fail_next(operation, status, message)
    with pytest.raises(HarborError) as failed:
        call(client(harbor))
    text = one_line(failed)
    assert f"answered {status}" in text and message in text
    assert f"{harbor.url}/api/v2.0/" in text
    assert "X-Request-Id" in text
    assert failed.value.status == status


def test_find_project_takes_the_exact_name_from_a_substring_listing(harbor):
    for name in ("airlock-tools", "airlock", "air"):
        harbor.standin.seed_project(name)
    c = client(harbor)
    assert c.find_project("air").name == "air"
    assert c.find_project("airlock").name == "airlock"
    assert c.find_project("airl") is None


def test_listings_are_read_page_by_page(harbor):
    for i in range(5):
        harbor.standin.seed_robot(f"r{i}", ["library"], [("repository", "pull")])
    c = client(harbor, page_size=2)
    assert c.find_robot("robot$r4").name == "robot$r4"
    pages = [r.query["page"] for r in harbor.standin.requests if r.path == "/robots"]
    assert pages == [["1"], ["2"], ["3"]]
    assert {r.query["page_size"][0] for r in harbor.standin.requests} == {"2"}


def test_robot_secret_refresh_returns_the_new_secret_once(harbor):
    stored = harbor.standin.seed_robot("nodes", ["library"], [("repository", "pull")])
    old = stored.secret
    new = client(harbor).refresh_robot_secret(stored.robot_id)
    assert new != old
    assert harbor.standin.robot_login("robot$nodes", new)
    assert not harbor.standin.robot_login("robot$nodes", old)


def test_a_redirect_is_not_followed_with_the_password(harbor, monkeypatch):
    """Harbor's API does not redirect; following one would hand the credentials on."""
    elsewhere = "https://127.0.0.1:9/api/v2.0/users/current"
    monkeypatch.setattr(
        HarborStandIn,
        "op_getCurrentUserInfo",
        lambda self, **_: Reply(302, headers={"Location": elsewhere}),
    )
    with pytest.raises(HarborError) as failed:
        client(harbor).current_user()
    assert "answered 302" in one_line(failed)
    assert [r.path for r in harbor.standin.requests] == ["/users/current"]
    harbor.standin.violations.clear()  # 302 is no answer the API file declares
