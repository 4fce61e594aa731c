"""The OpenAI-compatible adapter against a fake server on 127.0.0.1 (bounded requests)."""

from __future__ import annotations

import pytest

from mop_bench.lm.base import LanguageModel

# -- OpenAI-compatible adapter against a fake server ---------------------------------


class _FakeServer:
    """A tiny OpenAI-compatible server: words are tokens, log p(word) = -len(word)."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        self.requests: list[tuple[str, dict]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                if body.get("model") != "fake-model":
                    return self._send(404, {"error": {"message": "no such model"}})
                if self.path == "/v1/completions" and body.get("echo"):
                    text, offsets, pos = body["prompt"], [], 0
                    for word in text.split(" "):
                        offsets.append(pos)
                        pos += len(word) + 1
                    values = [None] + [-float(len(w)) for w in text.split(" ")[1:]]
                    lp = {"token_logprobs": values, "text_offset": offsets}
                    return self._send(200, {"choices": [{"text": text, "logprobs": lp}]})
                reply = f"seed={body['seed']} t={body['temperature']} n={body['max_tokens']}"
                usage = {"completion_tokens": 3}
                if self.path == "/v1/completions":
                    return self._send(200, {"choices": [{"text": reply}], "usage": usage})
                if self.path == "/v1/chat/completions":
                    reply += f" roles={'/'.join(m['role'] for m in body['messages'])}"
                    choice = {"message": {"role": "assistant", "content": reply}}
                    return self._send(200, {"choices": [choice], "usage": usage})
                return self._send(404, {"error": "unknown route"})

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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


def test_openai_adapter_generate(fake_server: _FakeServer) -> None:
    from mop_bench.lm.openai_compat import OpenAICompatLM

    lm = OpenAICompatLM(fake_server.url, "fake-model", timeout=5, retries=0, concurrency=2)
    assert isinstance(lm, LanguageModel)
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    out = lm.generate(["a", msgs], temperatures=[0.7, 0.0], seeds=[5, 9], max_new_tokens=4)
    assert out[0].text == "seed=5 t=0.7 n=4 roles=user"  # a string is one user message
    assert out[1].text == "seed=9 t=0.0 n=4 roles=system/user"
    assert out[0].n_tokens == 3 and lm.stats.generate_sequences == 2
    raw = OpenAICompatLM(fake_server.url, "fake-model", timeout=5, retries=0, chat=False)
    (c,) = raw.generate(["a"], temperatures=[1.0], seeds=[1], max_new_tokens=2)
    assert c.text == "seed=1 t=1.0 n=2"
    assert fake_server.requests[-1][0] == "/v1/completions"


def test_openai_adapter_score(fake_server: _FakeServer) -> None:
    from mop_bench.lm.openai_compat import OpenAICompatLM, ServerError

    lm = OpenAICompatLM(fake_server.url, "fake-model", timeout=5, retries=0, chat=False)
    scores = lm.score(["the prompt ", "p "], ["abc de", "x"], per_token=True)
    assert scores[0].n_tokens == 2 and scores[0].logprob.tolist() == [-5.0]
    assert scores[0].token_logprobs.ravel().tolist() == [-3.0, -2.0]
    assert scores[1].logprob.tolist() == [-1.0]
    (cut,) = lm.score(["p "], ["abc de fgh"], max_tokens=2)
    assert cut.n_tokens == 2 and cut.logprob.tolist() == [-5.0]
    path, body = fake_server.requests[-1]
    assert path == "/v1/completions" and body["echo"] is True and body["max_tokens"] == 0
    with pytest.raises(NotImplementedError, match="temperature"):
        lm.score(["p "], ["x"], temperatures=[0.5, 1.0])
    with pytest.raises(NotImplementedError, match="chat=False"):
        OpenAICompatLM(fake_server.url, "fake-model").score(["p "], ["x"])
    bad = OpenAICompatLM(fake_server.url, "other-model", timeout=5, retries=0)
    with pytest.raises(ServerError, match="HTTP 404"):
        bad.generate(["a"], temperatures=[1.0], seeds=[0], max_new_tokens=1)


def test_openai_adapter_unreachable_server() -> None:
    from mop_bench.lm.openai_compat import OpenAICompatLM, ServerError

    lm = OpenAICompatLM("http://127.0.0.1:9", "m", timeout=1, retries=0)
    with pytest.raises(ServerError, match="failed after 1 tries"):
        lm.generate(["a"], temperatures=[1.0], seeds=[0], max_new_tokens=1)


# -- registry and loading -------------------------------------------------------------
