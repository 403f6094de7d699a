"""An access review as CSV for the firm's auditors: one row per user, each carrying the review's
own facts (who started it, who signed it off, when), times ISO 8601 UTC, cells guarded against
spreadsheet formulas (``audit.export.safe_cell``, docs/security.md)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select

from portal.audit.export import filename_part
from portal.audit.export import safe_cell
from portal.extensions import db
from portal.reviews.models import AccessReview
from portal.reviews.models import AccessReviewItem

CSV_BATCH = 500

CSV_HEADER = (
    "review",
    "organisation",
    "scope",
    "started_at",
    "started_by",
    "finished_at",
    "signed_off_by",
    "signed_off_name",
    "user_id",
    "full_name",
    "profile",
    "state_at_start",
    "decision",
    "outcome",
    "decided_by",
    "decided_at",
)


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z") if moment else ""


def csv_lines(review: AccessReview, organisation: str) -> Iterator[str]:
    """The CSV text, a batch of rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    head = (
        review.id,
        organisation,
        review.scope,
        _when(review.started_at),
        review.started_by,
        _when(review.finished_at),
        review.signed_off_by,
        review.signed_off_name,
    )
    query = (
        select(AccessReviewItem)
        .where(AccessReviewItem.review_id == review.id)
        .order_by(AccessReviewItem.user_id_key, AccessReviewItem.id)
        .execution_options(yield_per=CSV_BATCH)
    )
    result = db.session.scalars(query)
    for batch in result.partitions():
        for item in batch:
            writer.writerow(
                safe_cell(cell)
                for cell in (
                    *head,
                    item.user_id,
                    item.full_name,
                    item.profile,
                    item.state_at_start,
                    item.decision,
                    item.outcome,
                    item.decided_by,
                    _when(item.decided_at),
                )
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
    result.close()


def filename(review: AccessReview, organisation: str) -> str:
    return f"access-review-{filename_part(organisation)}-{review.id}.csv"
