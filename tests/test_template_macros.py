"""The template macros that replace hand-written copies (issue 15): the CSRF input and the
POST-only button (``_macros/forms.html``), the search form and the pager (``_macros/lists.html``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask import render_template_string

TEMPLATES = Path(__file__).resolve().parent.parent / "portal" / "templates"


def _templates() -> dict[str, str]:
    return {
        path.relative_to(TEMPLATES).as_posix(): path.read_text(encoding="utf-8")
        for path in TEMPLATES.rglob("*.html")
    }


@pytest.mark.parametrize(
    ("pattern", "home"),
    [
        (r'name="csrf_token"', "_macros/forms.html"),  # csrf_input() writes it
        (r'class="pager"', "_macros/lists.html"),  # pager()
        (r'<input type="search" id="q"', "_macros/lists.html"),  # search_form()
    ],
)
def test_one_template_writes_it(pattern: str, home: str) -> None:
    writers = sorted(name for name, text in _templates().items() if re.search(pattern, text))
    assert writers == [home]


def test_one_macro_library_for_form_fields() -> None:
    libraries = sorted(
        name for name, text in _templates().items() if re.search(r"{% macro field\(", text)
    )
    assert libraries == ["_macros/forms.html"]
    assert not (TEMPLATES / "helpdesk" / "_fields.html").exists()


def test_post_button_writes_the_token_the_values_and_the_button(app: Flask) -> None:
    with app.test_request_context("/"):
        html = render_template_string(
            '{% from "_macros/forms.html" import post_button %}'
            "{{ post_button('/x/1', 'Remove <all>', button_class='button button-warning',"
            " form_class=None, hidden={'enabled': 'false', 'next': '/a?b=1&c=2'},"
            " cancel_url='/back') }}"
        )
    assert html.startswith('<form method="post" action="/x/1">\n')
    assert re.search(r'<input type="hidden" name="csrf_token" value="[^"]+">', html)
    assert '<input type="hidden" name="enabled" value="false">' in html
    assert '<input type="hidden" name="next" value="/a?b=1&amp;c=2">' in html
    assert '<button type="submit" class="button button-warning">Remove &lt;all&gt;</button>' in html
    assert html.index("</button>") < html.index('<a href="/back">Cancel</a>')


def test_post_button_puts_called_content_before_the_button(app: Flask) -> None:
    with app.test_request_context("/"):
        html = render_template_string(
            '{% from "_macros/forms.html" import post_button %}'
            "{% call post_button('/send', 'Send') %}<p class=\"hint\">Why</p>{% endcall %}"
        )
    assert 'class="inline-form"' in html
    assert html.index('<p class="hint">Why</p>') < html.index("<button")


def test_the_pager_keeps_the_filters_and_names_its_target(app: Flask) -> None:
    class Filters:
        def args(self, **changes: object) -> dict[str, object]:
            return {"q": "ada", **changes}

    with app.test_request_context("/"):
        one = render_template_string(
            '{% from "_macros/lists.html" import pager %}'
            "{{ pager('console.users', filters, 1, 1, False, 'user-results') }}",
            filters=Filters(),
        )
        middle = render_template_string(
            '{% from "_macros/lists.html" import pager %}'
            "{{ pager('console.users', filters, 2, None, True, 'user-results') }}",
            filters=Filters(),
        )
    assert "pager" not in one
    assert 'rel="prev" href="/console/users?q=ada&amp;page=1"' in middle
    assert 'rel="next" href="/console/users?q=ada&amp;page=3"' in middle
    assert middle.count('hx-target="#user-results"') == 2
    assert "<span>Page 2</span>" in middle
