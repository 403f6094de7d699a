"""Access reviews in the Console (docs/rules.md §4, "Access review"): start one (every user, or
the users list's filter), decide "keep" or "remove access" for each user (one at a time or
several ticked at once), then finish and sign off; the record is shown, exported as CSV and
printed.

Views are thin: parse → ``reviews.service`` inside ``write_transaction`` → redirect
(post/redirect/get).  Removing access asks R4's exact question on a page of its own first
(with the number of users beside it), then goes through ``management.set_enabled``, so the
refusals are those of the users list.  Everything works without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import stream_with_context
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import clock
from portal import htmx
from portal import messages
from portal import paging
from portal.accounts import queries
from portal.console import bp
from portal.console.decorators import admin_required
from portal.db import write_transaction
from portal.extensions import db
from portal.redirects import local_path
from portal.reviews import export
from portal.reviews import service
from portal.reviews.models import AccessReview
from portal.reviews.models import Decision

#: The users list's filter parameters a review may be started with.
FILTER_ARGS = ("q", "profile", "state", "reason", "expiring", "dormant")
#: Refusals listed one by one after a decision (the rest are counted).
REFUSALS_SHOWN = 20


def _review_or_404(pk: int) -> AccessReview:
    review = service.review_of(current_user.organisation_id, pk)
    if review is None:
        abort(404)  # another organisation's review does not exist here (docs/security.md AC-02)
    return review


def _filters(source: Any) -> queries.UserFilters:
    return queries.UserFilters.from_args({k: source.get(k, "") for k in FILTER_ARGS})


def _review_days() -> int:
    return int(current_app.config["PORTAL_ACCESS_REVIEW_DAYS"])


@bp.get("/reviews")
@admin_required
def reviews() -> str:
    org = current_user.organisation
    return render_template(
        "console/reviews/index.html",
        reviews=service.reviews_of(org.id),
        status=service.status(org, today=clock.today(), days=_review_days()),
        review_days=_review_days(),
    )


@bp.get("/reviews/new")
@admin_required
def review_new() -> str:
    """What a review started now would cover (the users list's filter, if any), and the button."""
    f = _filters(request.args)
    now, today = clock.now(), clock.today()
    page = queries.users_page(current_user.organisation_id, f, now=now, today=today, per_page=1)
    return render_template(
        "console/reviews/new.html",
        filters=f,
        scope=service.scope_words(f),
        count=page.total,
        more=page.more,
        hidden={k: v for k, v in f.args().items() if k in FILTER_ARGS},
        in_progress=service.open_review(current_user.organisation_id),
    )


@bp.post("/reviews")
@admin_required
def review_start() -> Response:
    f = _filters(request.form)
    with write_transaction(db.session):
        review, started = service.start(
            current_user._get_current_object(), f, now=clock.now(), today=clock.today()
        )
    if started:
        flash(
            f"Access review started: {review.users_total} "
            f"user{'s' * (review.users_total != 1)} to review.",
            "success",
        )
    else:
        flash("A review is already in progress: carry on with it.", "success")
    return redirect(url_for("console.review", pk=review.id))


def _show_and_page(source: Any) -> tuple[str, int]:
    show = source.get("show") or "all"
    if show not in service.SHOW:
        show = "all"
    page = paging.whole_number(source.get("page"), 1, 1_000_000) or 1
    return show, page


@dataclass(frozen=True)
class ItemsListing:
    """The review page's query string, as the ``pager`` macro asks for it."""

    pk: int
    show: str

    def args(self, **changes: Any) -> dict[str, Any]:
        values: dict[str, Any] = {"show": self.show, **changes}
        kept = {k: v for k, v in values.items() if v not in ("all", 1, None)}
        return {"pk": self.pk, **kept}


@bp.get("/reviews/<int:pk>")
@admin_required
def review(pk: int) -> Response:
    review = _review_or_404(pk)
    show, page = _show_and_page(request.args)
    items, pages = service.items_page(review.id, show, page)
    return htmx.page_or_fragment(
        "review-items",
        "console/reviews/_items.html",
        "console/reviews/show.html",
        review=review,
        items=items,
        show=show,
        listing=ItemsListing(review.id, show),
        page=min(page, pages),
        pages=pages,
        progress=service.progress(review.id),
        here=request.full_path,
    )


def _back(review: AccessReview) -> str:
    return local_path(
        request.form.get("next"),
        url_for("console.review", pk=review.id),
        under=f"/console/reviews/{review.id}",
    )


def _posted_items() -> tuple[list[int], Decision | None]:
    """The items and the decision posted: a row's own button (``row=keep:ID``) or the ticked
    boxes (``item``, repeated) with ``decision``."""
    row = request.form.get("row", "")
    if row:
        decision, _, raw = row.partition(":")
        number = paging.whole_number(raw, 1, 2**31 - 1)
        ids = [number] if number is not None else []
    else:
        decision = request.form.get("decision", "")
        ids = [
            n
            for n in (paging.whole_number(v, 1, 2**31 - 1) for v in request.form.getlist("item"))
            if n is not None
        ]
    try:
        return ids, Decision(decision)
    except ValueError:
        return ids, None


@bp.post("/reviews/<int:pk>/decisions")
@admin_required
def review_decide(pk: int) -> Response | str:
    review = _review_or_404(pk)
    ids, decision = _posted_items()
    back = _back(review)
    if decision is None:
        abort(400, "decision must be keep or remove")
    if not ids:
        flash("Tick at least one user first.", "error")
        return redirect(back)
    if decision is Decision.REMOVE and request.form.get("confirmed") != "yes":
        # R4's exact question first, on a page of its own (with or without JavaScript).
        items = service.items_of(review.id, ids)
        return render_template(
            "console/reviews/confirm_remove.html",
            review=review,
            items=items,
            question=messages.REMOVE_ACCESS_QUESTION,
            back=back,
        )
    with write_transaction(db.session):
        result = service.decide(
            current_user._get_current_object(),
            review,
            ids,
            decision,
            now=clock.now(),
            today=clock.today(),
        )
    done = len(result.changed)
    if done:
        verb = "Kept" if decision is Decision.KEEP else "Access removed for"
        noun = "user" if done == 1 else "users"
        names = ", ".join(i.user_id for i in result.changed[:5])
        more = f" and {done - 5} more" if done > 5 else ""
        flash(f"{verb} {done} {noun}: {names}{more}.", "success")
    if result.unchanged:
        flash(f"{len(result.unchanged)} already decided so: nothing changed.", "success")
    for item, why in result.refused[:REFUSALS_SHOWN]:
        flash(f"{item.user_id}: {why}", "error")
    if len(result.refused) > REFUSALS_SHOWN:
        flash(f"… and {len(result.refused) - REFUSALS_SHOWN} more refused.", "error")
    if result.not_found:
        flash(f"{result.not_found} not found in this review: nothing changed there.", "error")
    return redirect(back)


@bp.post("/reviews/<int:pk>/sign-off")
@admin_required
def review_sign_off(pk: int) -> Response:
    review = _review_or_404(pk)
    with write_transaction(db.session):
        problem = service.sign_off(
            current_user._get_current_object(),
            review,
            confirmed=request.form.get("confirm") == "yes",
            now=clock.now(),
        )
    if problem:
        flash(problem, "error")
        return redirect(url_for("console.review", pk=pk, _anchor="sign-off"))
    flash("The review is finished and signed off. Export it for your records.", "success")
    return redirect(url_for("console.review", pk=pk))


@bp.get("/reviews/<int:pk>/export.csv")
@admin_required
def review_csv(pk: int) -> Response:
    review = _review_or_404(pk)
    name = current_user.organisation.name
    # The generator runs after this view returns, in the request's context (its own session).
    response = Response(stream_with_context(export.csv_lines(review, name)), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{export.filename(review, name)}"'
    )
    return response


@bp.get("/reviews/<int:pk>/print")
@admin_required
def review_print(pk: int) -> str:
    """The whole record on one page, laid out for paper (``static/review-print.css``)."""
    review = _review_or_404(pk)
    items, _pages = service.items_page(review.id, "all", 1, per_page=review.users_total or 1)
    return render_template(
        "console/reviews/print.html",
        review=review,
        items=items,
        progress=service.progress(review.id),
    )
