"""Steady login traffic against a live server, from a few client threads, while a fault is
injected: every answer is counted by status, so a test can say "200 logins, 0 5xx"."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from urllib.parse import urlsplit

import requests

from tests.concurrency.test_login_concurrency import HOME
from tests.concurrency.test_login_concurrency import LOGIN
from tests.faults.processes import wait_until
from tests.helpers import csrf_token_in

REQUEST_TIMEOUT = 60.0


@dataclass
class Outcome:
    """One login round: the statuses of its requests, and whether it ended logged in."""

    statuses: list[int]
    logged_in: bool


def login_round(base: str, user_id: str, password: str) -> Outcome:
    """GET the login page, POST the right password, GET the home page, log out: as a browser
    would.  Stops at the first answer that is not the expected one."""
    statuses: list[int] = []
    with requests.Session() as http:
        page = http.get(base + LOGIN, timeout=REQUEST_TIMEOUT)
        statuses.append(page.status_code)
        if page.status_code != 200:
            return Outcome(statuses, False)
        token = csrf_token_in(page.text)
        answer = http.post(
            base + LOGIN,
            data={"user_id": user_id, "password": password, "csrf_token": token},
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT,
        )
        statuses.append(answer.status_code)
        if answer.status_code != 302 or urlsplit(answer.headers["Location"]).path != HOME:
            return Outcome(statuses, False)
        home = http.get(base + HOME, allow_redirects=False, timeout=REQUEST_TIMEOUT)
        statuses.append(home.status_code)
        return Outcome(statuses, home.status_code == 200)


@dataclass
class Traffic:
    """Client threads logging in again and again (one User ID each) until :meth:`stop`."""

    base: str
    users: list[str]
    password: str
    statuses: Counter[int] = field(default_factory=Counter)
    rounds: int = 0
    logins: int = 0
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(uid,), daemon=True) for uid in self.users
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT * 2)

    def _loop(self, user_id: str) -> None:
        while not self._stop.is_set():
            try:
                outcome = login_round(self.base, user_id, self.password)
            except requests.RequestException as exc:  # the server itself must never fail
                with self._lock:
                    self.errors.append(repr(exc))
                continue
            with self._lock:
                self.statuses.update(outcome.statuses)
                self.rounds += 1
                self.logins += outcome.logged_in

    def snapshot(self) -> tuple[int, int]:
        """(rounds, logins) so far."""
        with self._lock:
            return self.rounds, self.logins

    def wait_for_more(self, rounds: int, *, timeout: float, what: str) -> None:
        """Wait until ``rounds`` more rounds than now have finished."""
        start, _ = self.snapshot()
        wait_until(lambda: self.snapshot()[0] >= start + rounds, timeout=timeout, what=what)

    @property
    def server_errors(self) -> dict[int, int]:
        with self._lock:
            return {status: n for status, n in self.statuses.items() if status >= 500}
