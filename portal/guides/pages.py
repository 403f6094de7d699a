"""The guides written as Markdown files in ``portal/guides/content/`` and the guides search.

Each file starts with a small header block, then Markdown::

    ---
    title: Resetting your Administrator password
    summary: One sentence for the guides index and the search results.
    group: For Administrators
    order: 10
    ---
    The text...

The files are ours, but they are rendered as untrusted anyway: markdown-it-py with raw HTML
off (``<`` is escaped, ``javascript:`` links are refused), then nh3 keeps only the tags and
attributes the guides use.  Pages are read once per process (they ship with the package).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

from portal import config
from portal import messages
from portal.accounts import states

CONTENT_PACKAGE = "portal.guides.content"
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
#: What the rendered guides may contain after nh3 (everything markdown-it emits for them).
ALLOWED_TAGS = {
    "h2", "h3", "h4", "p", "ul", "ol", "li", "a", "strong", "em", "code", "pre",
    "blockquote", "table", "thead", "tbody", "tr", "th", "td", "hr", "br",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href"}, "th": {"scope"}, "ol": {"start"}}
MAX_QUERY_LENGTH = 100


class ContentError(ValueError):
    """A content file is malformed (a packaging mistake, caught by the tests)."""


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    summary: str
    group: str
    order: int
    markdown: str

    @functools.cached_property
    def html(self) -> Markup:
        return render_markdown(self.markdown)

    @functools.cached_property
    def plain(self) -> str:
        """The text without Markdown punctuation, for the search."""
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", self.markdown)
        return re.sub(r"[#*_`>|]+", " ", text)


@functools.cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")


def render_markdown(text: str) -> Markup:
    """Markdown → safe HTML (raw HTML off, then an allow-list sanitiser)."""
    html = _markdown().render(text).replace("<th>", '<th scope="col">')
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
    )
    return Markup(clean)  # noqa: S704  (sanitised just above)


def parse(slug: str, source: str) -> Page:
    """One content file → a :class:`Page` (ContentError when the header is missing)."""
    match = re.match(r"\A---\n(.*?)\n---\n(.*)\Z", source, re.S)
    if not match or not SLUG.match(slug):
        raise ContentError(f"{slug}.md: expected a '---' header block and a lowercase slug")
    header: dict[str, str] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            raise ContentError(f"{slug}.md: header line without a colon: {line!r}")
        header[key.strip()] = value.strip()
    missing = {"title", "summary", "group", "order"} - header.keys()
    if missing:
        raise ContentError(f"{slug}.md: header lacks {', '.join(sorted(missing))}")
    return Page(
        slug=slug,
        title=header["title"],
        summary=header["summary"],
        group=header["group"],
        order=int(header["order"]),
        markdown=_fill(slug, match.group(2)),
    )


def _placeholders() -> dict[str, str]:
    """The figures the guides quote, from their one home (``{{ name }}`` in a content file)."""
    return {
        "inactivity_days": str(states.INACTIVITY_DAYS),
        # The Helpdesk's defaults (an operator may set others: the guide says so).
        **{
            name: str(config.DEFAULTS[f"PORTAL_HELPDESK_{name.upper()}"])
            for name in ("day_starts", "day_ends", "target_days", "reopen_days")
        },
        "helpdesk_link_days": str(config.DEFAULTS["PORTAL_HELPDESK_STATUS_LINK_DAYS"]),
    }


def _fill(slug: str, markdown: str) -> str:
    values = _placeholders()

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ContentError(f"{slug}.md: unknown placeholder {match.group(0)!r}")
        return values[match.group(1)]

    return re.sub(r"\{\{ *(\w+) *\}\}", value, markdown)


@functools.cache
def all_pages() -> tuple[Page, ...]:
    """Every content page, in index order (group order, then ``order``)."""
    found = []
    for entry in resources.files(CONTENT_PACKAGE).iterdir():
        if entry.name.endswith(".md"):
            found.append(parse(entry.name.removesuffix(".md"), entry.read_text("utf-8")))
    return tuple(sorted(found, key=lambda p: (p.order, p.slug)))


def get(slug: str) -> Page | None:
    return next((p for p in all_pages() if p.slug == slug), None)


def groups() -> list[tuple[str, list[Page]]]:
    """The pages grouped for the index, groups in the order of their first page."""
    grouped: dict[str, list[Page]] = {}
    for page in all_pages():
        grouped.setdefault(page.group, []).append(page)
    return list(grouped.items())


# --- search --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    title: str
    url_endpoint: str
    url_values: dict[str, str]
    summary: str
    score: int


def terms(query: str) -> list[str]:
    """The case-folded words of a query (at most 10; longer queries are cut)."""
    words = re.findall(r"[\w-]+", query[:MAX_QUERY_LENGTH].casefold())
    return list(dict.fromkeys(words))[:10]


def _score(words: list[str], title: str, body: str) -> int:
    """0 unless every word occurs; title matches count more than body matches."""
    title_f, body_f = title.casefold(), body.casefold()
    score = 0
    for word in words:
        in_title, in_body = title_f.count(word), body_f.count(word)
        if not in_title and not in_body:
            return 0
        score += 10 * in_title + in_body
    return score


def search(query: str) -> list[Hit]:
    """Guides and Troubleshooting Guide entries containing every word of ``query``."""
    words = terms(query)
    if not words:
        return []
    hits: list[Hit] = []
    for page in all_pages():
        score = _score(words, page.title, f"{page.summary} {page.plain}")
        if score:
            hits.append(Hit(page.title, "guides.page", {"slug": page.slug}, page.summary, score))
    for message in messages.MESSAGES:
        body = f"{message.cause} {message.what_to_do}"
        score = _score(words, f"{message.code} {message.text}", body)
        if score:
            hits.append(
                Hit(
                    f"{message.code}: {message.text}",
                    "guides.troubleshooting",
                    {"_anchor": message.anchor},
                    message.cause,
                    score,
                )
            )
    return sorted(hits, key=lambda h: -h.score)
