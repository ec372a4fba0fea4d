"""The LLM summariser against a real local HTTP server that plays the API."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from digest.model import Article, ArticleSection
from digest.summarize import ExtractiveSummarizer, SummaryOptions, make_summarizer
from digest.summarize.llm import AnswerCache, LLMSummarizer

API_KEY = "sk-test-secret-123"
ANSWER = "Floods closed the bridge in Leeds.\nEngineers expect it to reopen next week."


@dataclass
class FakeAPI:
    """What the server answers, and what it was asked."""

    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""


def handler_for(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            api.requests.append(json.loads(body))
            api.headers.append(dict(self.headers))
            if self.path != "/v1/chat/completions" or api.mode == "error":
                self.send_error(500 if api.mode == "error" else 404)
                return
            if api.mode == "slow":
                time.sleep(0.6)
            content = "" if api.mode == "empty" else ANSWER
            payload = {"choices": [{"message": {"role": "assistant", "content": content}}]}
            data = b"not json" if api.mode == "garbage" else json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    state = FakeAPI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


ARTICLE = Article(
    id="floods",
    title="Floods close Leeds bridge",
    url="https://example.org/floods",
    sections=(
        ArticleSection(
            "",
            (
                "Floods closed the main bridge into Leeds on Sunday morning. "
                "Rescuers pulled 40 people from the floods near the bridge.",
            ),
        ),
        ArticleSection("Repairs", ("Engineers said the bridge would stay shut for a week.",)),
    ),
)


def options(api: FakeAPI, tmp_path: Path, **changes: Any) -> SummaryOptions:
    base: dict[str, Any] = {
        "llm_base_url": api.url,
        "llm_model": "test-model",
        "llm_api_key": API_KEY,
        "llm_timeout": 0.3,
        "llm_cache_path": tmp_path / "llm.sqlite",
    }
    return SummaryOptions(**(base | changes))


def extractive(opts: SummaryOptions) -> ExtractiveSummarizer:
    return ExtractiveSummarizer(opts)


def test_answer_becomes_the_summary_and_key_points_stay_extractive(
    api: FakeAPI, tmp_path: Path
) -> None:
    opts = options(api, tmp_path)
    summary = make_summarizer(opts).summarize(ARTICLE)
    assert summary.sentences == tuple(ANSWER.splitlines())
    assert summary.key_points == extractive(opts).summarize(ARTICLE).key_points
    request = api.requests[0]
    assert request["model"] == "test-model"
    assert "Floods closed the main bridge" in request["messages"][-1]["content"]
    assert api.headers[0]["Authorization"] == f"Bearer {API_KEY}"


def test_answer_is_cached_by_content_model_and_prompt(api: FakeAPI, tmp_path: Path) -> None:
    opts = options(api, tmp_path)
    first = make_summarizer(opts).summarize(ARTICLE)
    # A new summariser over the same cache file: no second request.
    again = make_summarizer(opts).summarize(ARTICLE)
    assert again == first
    assert len(api.requests) == 1
    make_summarizer(options(api, tmp_path, llm_model="other-model")).summarize(ARTICLE)
    make_summarizer(options(api, tmp_path, sentences=1)).summarize(ARTICLE)
    assert len(api.requests) == 3


def test_answer_is_cut_to_whole_sentences_within_the_budget(api: FakeAPI, tmp_path: Path) -> None:
    summary = make_summarizer(options(api, tmp_path, article_words=8)).summarize(ARTICLE)
    assert summary.sentences == ("Floods closed the bridge in Leeds.",)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("error", "HTTP 500"),
        ("slow", "no answer within"),
        ("garbage", "unreadable"),
        ("empty", "empty summary"),
    ],
)
def test_failure_falls_back_to_extractive_and_says_so(
    api: FakeAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str, reason: str
) -> None:
    api.mode = mode
    opts = options(api, tmp_path)
    with caplog.at_level(logging.WARNING, logger="digest.summarize.llm"):
        summary = make_summarizer(opts).summarize(ARTICLE)
    assert summary == extractive(opts).summarize(ARTICLE)
    assert "using the extractive summary" in caplog.text
    assert reason in caplog.text
    assert API_KEY not in caplog.text


def test_failed_answer_is_not_cached(api: FakeAPI, tmp_path: Path) -> None:
    api.mode = "error"
    make_summarizer(options(api, tmp_path)).summarize(ARTICLE)
    api.mode = "ok"
    summary = make_summarizer(options(api, tmp_path)).summarize(ARTICLE)
    assert summary.sentences == tuple(ANSWER.splitlines())
    assert len(api.requests) == 2


def test_unreachable_server_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{closed.server_address[1]}/v1"
    closed.server_close()  # nothing listens on this port any more
    opts = SummaryOptions(llm_base_url=url, llm_model="m", llm_cache_path=tmp_path / "c.sqlite")
    with caplog.at_level(logging.WARNING, logger="digest.summarize.llm"):
        summary = make_summarizer(opts).summarize(ARTICLE)
    assert summary == extractive(opts).summarize(ARTICLE)
    assert "ConnectError" in caplog.text


def test_api_key_is_not_in_the_options_repr(api: FakeAPI, tmp_path: Path) -> None:
    assert API_KEY not in repr(options(api, tmp_path))


def test_cache_without_a_path_lives_in_memory(api: FakeAPI) -> None:
    opts = SummaryOptions(llm_base_url=api.url, llm_model="m")
    summarizer = LLMSummarizer(opts, fallback=extractive(opts), cache=AnswerCache())
    summarizer.summarize(ARTICLE)
    summarizer.summarize(ARTICLE)
    assert len(api.requests) == 1
