"""Adapter for any OpenAI-compatible server (vLLM, llama.cpp server, TGI, ...).

Standard library only (urllib). As the protocol says, a plain-string prompt is one
user message: it goes to /v1/chat/completions, where the server applies the model's
chat template (as do message lists). With `chat=False`, strings go to /v1/completions
as raw text instead. Scoring uses the legacy completions "echo" trick: send prompt +
continuation with `echo=True, logprobs=1, max_tokens=0` and sum the log-probs of the
tokens that fall inside the continuation. Servers only report log-probs at
temperature 1, so other scoring temperatures raise NotImplementedError.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mop_bench.lm.base import Completion, LMStats, Prompt, SequenceScore


class ServerError(RuntimeError):
    """The server answered with an error or with a body we cannot use."""


class OpenAICompatLM:
    """`LanguageModel` over HTTP. Requests run `concurrency` at a time (servers batch
    concurrent requests themselves); each carries its own `seed` and `temperature`, so
    determinism is as good as the server's seeded sampling."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        concurrency: int = 8,
        retries: int = 2,
        chat: bool = True,
        progress: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self.retries = retries
        self.chat = chat
        self.progress = progress
        self.name = f"{model} [openai-compatible {self.base_url}]"
        self.stats = LMStats()

    # -- HTTP ------------------------------------------------------------------------

    def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{route}"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as err:
                detail = err.read()[:500].decode(errors="replace")
                # 4xx means the request itself is wrong: retrying cannot help
                if err.code < 500 or attempt == self.retries:
                    raise ServerError(f"POST {url} -> HTTP {err.code}: {detail}") from err
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                if attempt == self.retries:
                    raise ServerError(
                        f"POST {url} failed after {attempt + 1} tries: {err}"
                    ) from err
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def _map(self, fn: Any, items: Sequence[Any], desc: str) -> list[Any]:
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(
                tqdm(
                    pool.map(fn, items),
                    total=len(items),
                    desc=desc,
                    disable=not self.progress,
                    leave=False,
                )
            )

    # -- generate --------------------------------------------------------------------

    def _generate_one(self, args: tuple[Prompt, float, int, int, float]) -> Completion:
        prompt, temperature, seed, max_new_tokens, top_p = args
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
        }
        if isinstance(prompt, str) and not self.chat:
            answer = self._post("completions", {**body, "prompt": prompt})
            choice = _first_choice(answer, "completions")
            text = choice.get("text")
        else:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            answer = self._post("chat/completions", {**body, "messages": list(messages)})
            choice = _first_choice(answer, "chat/completions")
            text = (choice.get("message") or {}).get("content")
        if not isinstance(text, str):
            raise ServerError(f"server answer has no generated text: {json.dumps(answer)[:300]}")
        usage = answer.get("usage") or {}
        n_tokens = usage.get("completion_tokens")
        return Completion(text, int(n_tokens) if n_tokens is not None else -1)

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        temperatures: Sequence[float],
        seeds: Sequence[int],
        max_new_tokens: int,
        top_p: float = 1.0,
    ) -> list[Completion]:
        """One request per prompt. n_tokens is the server's `usage.completion_tokens`
        (-1 where the server does not report usage)."""
        if len(temperatures) != len(prompts) or len(seeds) != len(prompts):
            raise ValueError(
                f"generate: {len(prompts)} prompts but {len(temperatures)} temperatures "
                f"and {len(seeds)} seeds"
            )
        start = time.perf_counter()
        jobs = [
            (p, float(t), int(s), int(max_new_tokens), float(top_p))
            for p, t, s in zip(prompts, temperatures, seeds, strict=False)
        ]
        out = self._map(self._generate_one, jobs, "generate")
        self.stats.add_generate(
            len(out), sum(max(c.n_tokens, 0) for c in out), time.perf_counter() - start
        )
        return out

    # -- score -----------------------------------------------------------------------

    def _score_one(self, args: tuple[str, str, int | None, bool]) -> SequenceScore:
        prompt, continuation, max_tokens, per_token = args
        answer = self._post(
            "completions",
            {
                "model": self.model,
                "prompt": prompt + continuation,
                "max_tokens": 0,
                "echo": True,
                "logprobs": 1,
                "temperature": 1.0,
            },
        )
        logprobs = _first_choice(answer, "completions").get("logprobs") or {}
        values = logprobs.get("token_logprobs")
        offsets = logprobs.get("text_offset")
        if (
            not isinstance(values, list)
            or not isinstance(offsets, list)
            or len(values) != len(offsets)
        ):
            raise ServerError(
                "server did not echo prompt log-probs (needs echo=True with logprobs and "
                f"text_offset in /v1/completions): {json.dumps(answer)[:300]}"
            )
        # Tokens that start at or after the end of the prompt belong to the continuation.
        # A token straddling the boundary (prompt and continuation merged by the
        # tokenizer) counts as prompt; end prompts on whitespace to avoid that.
        picked = [
            v for v, o in zip(values, offsets, strict=False) if o >= len(prompt) and v is not None
        ]
        if max_tokens is not None:
            picked = picked[:max_tokens]
        tokens = np.asarray(picked, dtype=np.float64).reshape(-1, 1)
        return SequenceScore(
            logprob=tokens.sum(0),
            n_tokens=len(picked),
            token_logprobs=tokens.astype(np.float32) if per_token else None,
        )

    def score(
        self,
        prompts: Sequence[Prompt],
        continuations: Sequence[str],
        *,
        temperatures: Sequence[float] = (1.0,),
        max_tokens: int | None = None,
        per_token: bool = False,
    ) -> list[SequenceScore]:
        if any(float(t) != 1.0 for t in temperatures) or len(temperatures) != 1:
            raise NotImplementedError(
                f"{self.name}: OpenAI-compatible servers only return log-probs at temperature "
                f"1.0 (asked for {list(temperatures)}); fit temperatures with the transformers "
                f"backend, which scores any temperature grid in one pass"
            )
        if len(prompts) != len(continuations):
            raise ValueError(
                f"score: {len(prompts)} prompts but {len(continuations)} continuations"
            )
        if self.chat:
            raise NotImplementedError(
                f"{self.name}: servers apply the chat template only when generating; scoring "
                f"sends raw text to /v1/completions. Create the backend with chat=False and "
                f"pass prompts with the template already rendered"
            )
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise NotImplementedError(
                    f"score: prompt {i} is a message list; /v1/completions scores raw text only, "
                    f"so render the chat template yourself and pass a string"
                )
        start = time.perf_counter()
        jobs = [
            (str(p), c, max_tokens, per_token) for p, c in zip(prompts, continuations, strict=False)
        ]
        out = self._map(self._score_one, jobs, "score")
        self.stats.add_score(len(out), sum(s.n_tokens for s in out), time.perf_counter() - start)
        return out


def _first_choice(answer: dict[str, Any], route: str) -> dict[str, Any]:
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ServerError(f"/{route} answer has no choices: {json.dumps(answer)[:300]}")
    return choices[0]
