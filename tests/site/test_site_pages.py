"""Guides and their search, cookies, Live/Training, the layout, and the security headers on
every kind of response (issue 6 items 2, 4, 5, 6, 7; docs/security.md CP-01, CP-03)."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import ConfigError
from portal import create_app
from portal.cookies import CHOICE_COOKIE
from portal.guides import pages
from tests.conftest import base_settings

# --- guides ---------------------------------------------------------------------------------

REQUIRED_GUIDES = {
    "resetting-administrator-password",
    "managing-users",
    "managing-expiry-dates",
    "enabled-and-active",
    "after-you-are-registered",
    "contacting-the-helpdesk",
}
#: Paths the guides link to that other branches serve (the integrator removes them from here).
SERVED_ELSEWHERE = {"/helpdesk/contact"}


def test_every_required_guide_exists_and_renders(client: FlaskClient) -> None:
    assert {p.slug for p in pages.all_pages()} >= REQUIRED_GUIDES
    index = client.get("/guides/").text
    for page in pages.all_pages():
        response = client.get(f"/guides/{page.slug}")
        assert response.status_code == 200
        assert f"<title>{page.title} – Guides – Claims Portal Console</title>" in response.text
        assert f'href="/guides/{page.slug}"' in index


def test_internal_links_in_the_guides_lead_somewhere(app: Flask, client: FlaskClient) -> None:
    ids = set(re.findall(r'id="([A-Z]+-\d+)"', client.get("/guides/troubleshooting").text))
    adapter = app.url_map.bind("localhost")
    for page in pages.all_pages():
        for href in re.findall(r'href="(/[^"]*)"', str(page.html)):
            path, _, anchor = href.partition("#")
            if path in SERVED_ELSEWHERE:
                continue
            adapter.match(path, method="GET")  # raises NotFound for a broken link
            if path.startswith("/guides/") and path != "/guides/troubleshooting":
                assert pages.get(path.removeprefix("/guides/")) is not None, href
            if anchor and path == "/guides/troubleshooting":
                assert anchor in ids, href


def test_r5_three_steps_and_each_reason_are_explained() -> None:
    page = pages.get("enabled-and-active")
    assert page is not None
    text = " ".join(page.markdown.split())
    for reason in ("lockout", "inactivity", "expiry"):
        assert reason in text
    assert "Are you sure you want to remove this User’s access?" in text
    steps = re.findall(r"^\d\. ", page.markdown, re.M)
    assert len(steps) >= 3


def test_the_console_login_links_the_reset_guide(client: FlaskClient) -> None:
    page = client.get("/console/login").text
    assert 'href="/guides/resetting-administrator-password"' in page


def test_the_helpdesk_guide_says_what_to_include() -> None:
    page = pages.get("contacting-the-helpdesk")
    assert page is not None
    for words in ("role", "console", "error message", "screenshot", "/helpdesk/contact"):
        assert words in page.markdown


def test_markdown_is_rendered_without_raw_html_or_script_links() -> None:
    html = str(
        pages.render_markdown(
            "<script>alert(1)</script>\n\n[x](javascript:alert(1)) <b onclick=x>y</b>\n\n"
            "| a |\n|---|\n| b |\n"
        )
    )
    assert "<script" not in html
    assert 'href="javascript' not in html  # left as text, never a link
    assert "<b " not in html  # raw HTML is shown as text
    assert '<th scope="col">a</th>' in html


def test_a_malformed_content_file_is_refused() -> None:
    with pytest.raises(pages.ContentError):
        pages.parse("broken", "# no header\n")
    with pytest.raises(pages.ContentError):
        pages.parse("Bad Slug", "---\ntitle: t\nsummary: s\ngroup: g\norder: 1\n---\nx")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("LOGIN-03", "/guides/troubleshooting#LOGIN-03"),
        ("expiry date", "/guides/managing-expiry-dates"),
        ("ENABLED active", "/guides/enabled-and-active"),
        ("screenshot", "/guides/contacting-the-helpdesk"),
    ],
)
def test_search_finds_guides_and_messages(client: FlaskClient, query: str, expected: str) -> None:
    page = client.get("/guides/", query_string={"q": query})
    assert page.status_code == 200
    assert f'href="{expected}"' in page.text.split('id="guide-results"', 1)[1]


@pytest.mark.parametrize("query", ["zzzz-nothing", "<script>", "\x00", "x" * 5000, "%"])
def test_search_without_results_or_with_junk_is_calm(client: FlaskClient, query: str) -> None:
    page = client.get("/guides/", query_string={"q": query})
    assert page.status_code == 200
    assert "<script>" not in page.text.split("<main", 1)[1]


def test_search_answers_htmx_with_the_results_only(client: FlaskClient) -> None:
    response = client.get(
        "/guides/?q=expiry", headers={"HX-Request": "true", "HX-Target": "guide-results"}
    )
    assert response.text.lstrip().startswith('<div id="guide-results"')
    assert "<html" not in response.text
    assert "HX-Request" in response.headers["Vary"]


def test_an_unknown_guide_is_a_404(client: FlaskClient) -> None:
    assert client.get("/guides/no-such-guide").status_code == 404


# --- cookies --------------------------------------------------------------------------------


def _set_cookies(response: object) -> dict[str, SimpleCookie]:
    found = {}
    for header in response.headers.getlist("Set-Cookie"):  # type: ignore[attr-defined]
        cookie = SimpleCookie()
        cookie.load(header)
        found.update({name: cookie for name in cookie})
    return found


def test_the_cookies_page_lists_what_the_app_really_sets(app: Flask, client: FlaskClient) -> None:
    page = client.get("/portal/login")
    set_names = set(_set_cookies(page))
    assert set_names == {app.config["SESSION_COOKIE_NAME"]}
    cookies_page = client.get("/cookies").text
    assert "essential cookies only" in cookies_page
    for name in (app.config["SESSION_COOKIE_NAME"], CHOICE_COOKIE):
        assert f"<code>{name}</code>" in cookies_page
    idle = app.config["PORTAL_SESSION_IDLE_MINUTES"]
    assert f"{idle} minutes without activity" in cookies_page
    assert 'href="/cookies">Change cookie choices</a>' in page.text


def test_the_cookie_choice_is_remembered(client: FlaskClient) -> None:
    assert "Hide cookie message" in client.get("/guides/").text
    response = client.post("/cookies", data={"message": "hide"})
    assert response.status_code == 302
    cookie = _set_cookies(response)[CHOICE_COOKIE][CHOICE_COOKIE]
    assert cookie.value == "hidden"
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 365 * 24 * 3600
    assert "Hide cookie message" not in client.get("/guides/").text
    assert re.search(r'<input checked[^>]*value="hide"', client.get("/cookies").text)
    client.post("/cookies", data={"message": "show"})
    assert "Hide cookie message" in client.get("/guides/").text


def test_the_banner_button_hides_the_message_and_goes_back(client: FlaskClient) -> None:
    back = {"Referer": "http://localhost/guides/?q=x"}
    response = client.post("/cookies/hide-message", headers=back)
    assert response.headers["Location"] == "/guides/?q=x"
    for referer in ("http://evil.example/guides/", "http://localhost//evil.example/", ""):
        evil = client.post("/cookies/hide-message", headers={"Referer": referer})
        assert evil.headers["Location"] == "/"


def test_a_bad_cookie_choice_is_a_clear_message(client: FlaskClient) -> None:
    response = client.post("/cookies", data={"message": "all"})
    assert response.status_code == 400
    assert "There is a problem" in response.text


# --- Live / Training ------------------------------------------------------------------------


def test_live_has_no_banner(client: FlaskClient) -> None:
    page = client.get("/portal/login").text
    assert "training-banner" not in page
    assert "<title>Log in to the Portal – Claims Portal Console</title>" in page


@pytest.mark.config(PORTAL_ENVIRONMENT="training")
@pytest.mark.parametrize("url", ["/portal/login", "/guides/", "/cookies", "/nope", "/newsletter"])
def test_training_shows_a_banner_and_its_name_on_every_page(client: FlaskClient, url: str) -> None:
    page = client.get(url).text
    assert 'class="training-banner"' in page
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None
    assert title.group(1).startswith("Training: ")


def test_portal_environment_is_validated(tmp_path: object) -> None:
    settings = base_settings("sqlite://")
    assert create_app({**settings, "PORTAL_ENVIRONMENT": " Training "}).config[
        "PORTAL_ENVIRONMENT"
    ] == ("training")
    with pytest.raises(ConfigError, match="PORTAL_ENVIRONMENT"):
        create_app({**settings, "PORTAL_ENVIRONMENT": "staging"})


def test_portal_environment_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_ENVIRONMENT", "training")
    assert create_app(base_settings("sqlite://")).config["PORTAL_ENVIRONMENT"] == "training"


# --- layout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/portal/login", "/guides/", "/cookies", "/newsletter", "/nope"])
def test_every_page_has_the_landmarks_and_a_skip_link(client: FlaskClient, url: str) -> None:
    page = client.get(url).text
    assert page.index('class="skip-link" href="#main"') < page.index("<header")
    for landmark in ("<header", "<nav", '<main id="main"', "<footer"):
        assert landmark in page
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None
    assert not title.group(1).startswith(" –")  # every page names itself


# --- security headers (CP-01, CP-03) --------------------------------------------------------

PAGES = ["/portal/login", "/guides/", "/static/app.css", "/nope", "/newsletter/subscribers.csv"]


@pytest.mark.parametrize("url", PAGES)
def test_security_headers_on_every_kind_of_response(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    response.close()
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain http: never


@pytest.mark.parametrize("url", PAGES)
def test_hsts_over_https(client: FlaskClient, url: str) -> None:
    response = client.get(url, base_url="https://portal.example.test")
    response.close()
    hsts = response.headers["Strict-Transport-Security"]
    max_age = int(re.search(r"max-age=(\d+)", hsts).group(1))  # type: ignore[union-attr]
    assert max_age >= 365 * 24 * 3600
    assert "includeSubDomains" in hsts


def test_security_headers_on_htmx_fragments(client: FlaskClient) -> None:
    fragment = client.get(
        "/guides/?q=expiry",
        headers={"HX-Request": "true", "HX-Target": "guide-results"},
        base_url="https://portal.example.test",
    )
    assert "frame-ancestors 'none'" in fragment.headers["Content-Security-Policy"]
    assert fragment.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" in fragment.headers


@pytest.mark.config(PORTAL_PROXY_FIX_HOPS=1)
def test_hsts_behind_a_tls_proxy(client: FlaskClient) -> None:
    response = client.get("/guides/", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in response.headers
