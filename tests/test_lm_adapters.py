"""The OpenAI-compatible adapter and the doctor against a fake server on 127.0.0.1.

The fake server is only for the adapter's own logic and error paths (its semantics are
written here, so it agrees with the adapter by construction); the proof against real
engines is tests/test_engines.py. Every request is bounded (timeouts, retries <= 1).
"""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from mop_bench.lm.base import LanguageModel
from mop_bench.lm.http import ServerError, public_url
from mop_bench.lm.openai_compat import OpenAICompatLM


def _tokens(text: str) -> tuple[list[str], list[int]]:
    """Words are tokens: 'a b' -> ['a', ' b'] at offsets [0, 1]."""
    words = text.split(" ")
    tokens = [words[0]] + [" " + w for w in words[1:]]
    offsets, pos = [], 0
    for t in tokens:
        offsets.append(pos)
        pos += len(t)
    return tokens, offsets


def _lp(token: str) -> float:
    return -float(len(token.strip()))


class _FakeServer:
    """A tiny OpenAI-compatible server: log p(word) = -len(word). `shift` echoes each
    token with the next token's log-prob (a broken echo); `missing_generated` leaves
    the generated token out of the echo (as llama-cpp-python does); `fail_first` answers
    that many requests with HTTP 503 first; `delay` sleeps before answering."""

    def __init__(self, *, owned_by: str = "fake") -> None:
        self.requests: list[tuple[str, dict]] = []
        self.shift = False
        self.missing_generated = False
        self.fail_first = 0
        self.delay = 0.0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    models = [{"id": "fake-model", "owned_by": owned_by}]
                    return self._send(200, {"object": "list", "data": models})
                return self._send(404, {"error": "unknown route"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                time.sleep(outer.delay)
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    return self._send(503, {"error": {"message": "busy\nwith a traceback"}})
                if body.get("model") != "fake-model":
                    return self._send(404, {"error": {"message": "no such model"}})
                if "bad_option" in body:
                    return self._send(400, {"error": {"message": "bad_option is not allowed"}})
                if self.path == "/v1/completions" and body.get("echo"):
                    return self._send(200, self._echo(body["prompt"]))
                reply = f"seed={body['seed']} t={body['temperature']} n={body['max_tokens']}"
                usage = {"completion_tokens": 3}
                if self.path == "/v1/completions":
                    if "logprobs" in body:  # the doctor's greedy run: continue the words
                        reply = " " + reply
                    toks = (
                        [" " + w for w in reply.split()] if reply[0] == " " else _tokens(reply)[0]
                    )
                    lp = {"tokens": toks, "token_logprobs": [_lp(t) for t in toks]}
                    choice = {"text": reply, "logprobs": lp}
                    return self._send(200, {"choices": [choice], "usage": usage})
                if self.path == "/v1/chat/completions":
                    reply += f" roles={'/'.join(m['role'] for m in body['messages'])}"
                    if body.get("continue_final_message"):
                        reply += " continued"
                    choice = {"message": {"role": "assistant", "content": reply}}
                    return self._send(200, {"choices": [choice], "usage": usage})
                return self._send(404, {"error": "unknown route"})

            def _echo(self, text: str) -> dict:
                tokens, offsets = _tokens(text)
                values: list[float | None] = [None] + [_lp(t) for t in tokens[1:]]
                if outer.shift:
                    values = [None] + [_lp(t) for t in tokens[2:]] + [-9.0]
                if not outer.missing_generated:  # the generated token, max_tokens=1
                    tokens, offsets = [*tokens, " gen"], [*offsets, len(text)]
                    values = [*values, -3.0]
                lp = {"tokens": tokens, "token_logprobs": values, "text_offset": offsets}
                usage = {"prompt_tokens": len(text.split(" ")), "completion_tokens": 1}
                return {"choices": [{"text": text, "logprobs": lp}], "usage": usage}

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that timed out and hung up is expected here

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def fake_server():
    server = _FakeServer()
    yield server
    server.close()


def _lm(server: _FakeServer, **kw) -> OpenAICompatLM:
    return OpenAICompatLM(server.url, "fake-model", **{"timeout": 5, "retries": 0, **kw})


def test_openai_adapter_generate(fake_server: _FakeServer) -> None:
    lm = _lm(fake_server, concurrency=2)
    assert isinstance(lm, LanguageModel)
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    out = lm.generate(["a", msgs], temperatures=[0.7, 0.0], seeds=[5, 9], max_new_tokens=4)
    assert out[0].text == "seed=5 t=0.7 n=4 roles=user"  # a string is one user message
    assert out[1].text == "seed=9 t=0.0 n=4 roles=system/user"
    assert out[0].n_tokens == 3 and lm.stats.generate_sequences == 2
    raw = _lm(fake_server, chat=False)
    (c,) = raw.generate(["a"], temperatures=[1.0], seeds=[1], max_new_tokens=2)
    assert c.text == "seed=1 t=1.0 n=2"
    assert fake_server.requests[-1][0] == "/v1/completions"
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        lm.generate(["a"], temperatures=[1.0], seeds=[1], max_new_tokens=0)


def test_openai_adapter_continues_assistant_turn(fake_server: _FakeServer) -> None:
    """A prompt ending with an assistant message: vLLM continues it on the chat route;
    other engines get the template rendered here, sent as raw text."""
    from tiny_llama import smollm2_tokenizer

    msgs = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "Once"}]
    vllm = _FakeServer(owned_by="vllm")
    try:
        (c,) = _lm(vllm).generate([msgs], temperatures=[1.0], seeds=[1], max_new_tokens=2)
        path, body = vllm.requests[-1]
        assert path == "/v1/chat/completions" and c.text.endswith("continued")
        assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    finally:
        vllm.close()
    lm = _lm(fake_server, tokenizer=smollm2_tokenizer())
    lm.generate([msgs], temperatures=[1.0], seeds=[1], max_new_tokens=2)
    path, body = fake_server.requests[-1]
    assert path == "/v1/completions"
    assert body["prompt"].endswith("<|im_start|>assistant\nOnce")  # left open, not closed


def test_openai_adapter_score(fake_server: _FakeServer) -> None:
    lm = _lm(fake_server, chat=False)
    scores = lm.score(["the prompt", "p"], [" abc de", " x"], per_token=True)
    assert scores[0].n_tokens == 2 and scores[0].logprob.tolist() == [-5.0]
    assert scores[0].token_logprobs.ravel().tolist() == [-3.0, -2.0]  # generated entry dropped
    assert scores[1].logprob.tolist() == [-1.0]
    (cut,) = lm.score(["p"], [" abc de fgh"], max_tokens=2)
    assert cut.n_tokens == 2 and cut.logprob.tolist() == [-5.0]
    path, body = fake_server.requests[-1]
    assert path == "/v1/completions" and body["echo"] is True and body["max_tokens"] == 1
    assert "prompt_logprobs" not in body  # vLLM only
    fake_server.missing_generated = True  # llama-cpp-python's echo: same result
    (again,) = lm.score(["p"], [" abc de fgh"], max_tokens=2)
    assert again.logprob.tolist() == [-5.0]
    with pytest.raises(NotImplementedError, match="temperature"):
        lm.score(["p"], [" x"], temperatures=[0.5, 1.0])


def test_openai_adapter_scores_chat_prompts_through_the_template(
    fake_server: _FakeServer,
) -> None:
    """Chat prompts (as MoP's fit sends them) are rendered with the model's chat
    template into raw text for /v1/completions."""
    from tiny_llama import smollm2_tokenizer

    tok = smollm2_tokenizer()
    lm = _lm(fake_server, tokenizer=tok)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    (s,) = lm.score([msgs], ["Hello there"], per_token=True)
    _, body = fake_server.requests[-1]
    expected = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert body["prompt"] == expected + "Hello there"
    # the fake's word tokens: "...assistant\nHello" starts before the continuation, so
    # it counts as prompt (a token straddling the boundary); " there" is scored
    assert s.n_tokens == 1 and s.logprob.tolist() == [-5.0]


def test_openai_adapter_errors_are_one_line(fake_server: _FakeServer) -> None:
    bad = OpenAICompatLM(fake_server.url, "other-model", timeout=5, retries=0)
    with pytest.raises(ServerError, match="HTTP 404: no such model"):
        bad.generate(["a"], temperatures=[1.0], seeds=[0], max_new_tokens=1)
    with pytest.raises(ServerError, match="does not serve model 'other-model'; it serves: fake"):
        bad.server_info()
    lm = _lm(fake_server)
    with pytest.raises(ServerError, match="HTTP 400: bad_option is not allowed"):
        lm.http.request("completions", {"model": "fake-model", "bad_option": 1})
    # 5xx is retried with backoff; the message of the last one is a single line
    fake_server.fail_first = 1
    retrying = _lm(fake_server, retries=1)
    (c,) = retrying.generate(["a"], temperatures=[1.0], seeds=[2], max_new_tokens=1)
    assert c.text.startswith("seed=2")
    fake_server.fail_first = 5
    with pytest.raises(ServerError) as err:
        retrying.generate(["a"], temperatures=[1.0], seeds=[2], max_new_tokens=1)
    assert "HTTP 503: busy with a traceback" in str(err.value) and "\n" not in str(err.value)
    fake_server.fail_first = 0
    fake_server.delay = 1.5
    slow = _lm(fake_server, timeout=0.5)
    with pytest.raises(ServerError, match=r"no answer within 0.5 s"):
        slow.generate(["a"], temperatures=[1.0], seeds=[0], max_new_tokens=1)
    assert isinstance(ServerError("x"), ValueError)  # the CLI prints it on one line, rc 2


def test_openai_adapter_unreachable_server() -> None:
    lm = OpenAICompatLM("http://127.0.0.1:9", "m", timeout=1, retries=0)
    with pytest.raises(ServerError, match=r"cannot reach the server at http://127\.0\.0\.1:9/v1"):
        lm.generate(["a"], temperatures=[1.0], seeds=[0], max_new_tokens=1)


def test_identity_has_no_credentials() -> None:
    lm = OpenAICompatLM("https://user:s3cret@example.org:8443/v1?api_key=k#x", "m", api_key="sk-1")
    assert "s3cret" not in lm.name and "api_key" not in lm.name and "sk-1" not in lm.name
    assert lm.name == "m [openai-compatible https://example.org:8443/v1]"
    assert public_url("http://a:b@h/v1") == "http://h/v1"


def test_cli_maps_server_errors_to_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from mop_bench.cli import main

    rc = main(
        [
            "doctor",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--reference",
            "none",
            "--timeout",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("mop-bench: error: cannot reach the server")
    assert err.count("\n") == 1


def test_doctor_flags_a_shifted_echo_and_refuses_scoring(
    fake_server: _FakeServer, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference-free alignment check: log-probs the server reports for tokens it
    generated must equal the echoed ones; a shifted echo fails, scoring is refused
    (with the reason), generation still works, and the verdict is cached."""
    from tiny_llama import smollm2_tokenizer

    from mop_bench.lm.doctor import (
        ScoringRefused,
        cached_report,
        require_scoring_ok,
        run_doctor,
    )

    monkeypatch.setenv("MOP_BENCH_CACHE", str(tmp_path))
    lm = _lm(fake_server, tokenizer=smollm2_tokenizer())
    good = run_doctor(lm, scoring_only=True)
    assert good.scoring_ok, good.lines()
    assert {c.name: c.status for c in good.checks}["alignment"] == "pass"
    require_scoring_ok(lm)  # runs the scoring checks and caches them
    assert cached_report({"backend": "openai", **lm.server_info()}) is not None

    fake_server.shift = True
    shifted = _FakeServer()
    shifted.shift = True
    try:
        broken = _lm(shifted, tokenizer=smollm2_tokenizer())
        report = run_doctor(broken, scoring_only=True)
        by_name = {c.name: c for c in report.checks}
        assert by_name["alignment"].status == "FAIL"
        assert "shifted by one position" in by_name["alignment"].detail
        assert not report.scoring_ok
        with pytest.raises(ScoringRefused, match="refusing to score through fake-model"):
            require_scoring_ok(broken)
        broken.generate(["a"], temperatures=[1.0], seeds=[0], max_new_tokens=1)  # allowed
    finally:
        shifted.close()


def test_doctor_report_cache_is_validated(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mop_bench.lm.doctor import DoctorReport, _cache_path, cached_report, save_report
    from mop_bench.lm.doctor_checks import Check

    monkeypatch.setenv("MOP_BENCH_CACHE", str(tmp_path))
    backend = {"backend": "openai", "url": "http://h/v1", "model": "m", "engine": "vllm"}
    report = DoctorReport(backend, [Check("echo", "FAIL", "no echo", True)])
    save_report(report)
    loaded = cached_report(backend)
    assert loaded is not None and not loaded.scoring_ok
    assert loaded.scoring_problems() == ["echo: no echo"]
    assert cached_report({**backend, "engine_version": "2"}) is None  # another server
    _cache_path(backend).write_text('{"version": 1, "checks": [{"name": 3}]}')
    assert cached_report(backend) is None  # malformed: not trusted


# -- registry and loading -------------------------------------------------------------


def test_openai_adapter_sends_raw_prompts_to_completions_with_stop(
    fake_server: _FakeServer,
) -> None:
    """A completion-style prompt goes to /v1/completions as is, even with chat=True,
    and its stop strings go to the server; scoring sends its text without a template."""
    from mop_bench.lm.base import RawPrompt

    lm = _lm(fake_server)  # chat=True: strings would go to the chat route
    raw = RawPrompt("Yelp review (positive):\n")
    (c,) = lm.generate([raw], temperatures=[1.0], seeds=[3], max_new_tokens=5, stop=["\n\n"])
    path, body = fake_server.requests[-1]
    assert path == "/v1/completions"
    assert body["prompt"] == raw.text and body["stop"] == ["\n\n"]
    assert c.text == "seed=3 t=1.0 n=5"
    assert lm.render(raw) == (raw.text, False)
