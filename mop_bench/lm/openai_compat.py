"""Adapter for any OpenAI-compatible server (vLLM, llama-cpp-python, TGI, SGLang, ...).

Generation: a plain-string prompt is one user message and goes to
/v1/chat/completions, where the server applies the model's chat template (as do
message lists); with `chat=False` strings go to /v1/completions as raw text. A message
list whose last message is the assistant's is a turn to *continue*: vLLM takes it with
`continue_final_message` on /v1/chat/completions; other engines cannot, so the adapter
renders the chat template itself (the model's tokenizer) and sends raw text.

Scoring (the "echo" trick, as lm-evaluation-harness does it): the prompt is rendered
to text (the chat template via the model's tokenizer unless `chat=False`), prompt +
continuation go to /v1/completions with `echo=True, logprobs=1, max_tokens=1`, and the
continuation's log-probs are the echoed entries whose `text_offset` falls inside the
continuation. The generated entry (offset at the end of the text) is dropped.
`max_tokens=0` is never sent: llama-cpp-python takes it as "unlimited". On vLLM the
request also asks for `prompt_logprobs`, which carries each prompt token's id, and
checks that it agrees with the echo. Servers only report log-probs at temperature 1,
so other scoring temperatures raise NotImplementedError.

Whether a server's echoed log-probs can be trusted at all is what `mop-bench doctor`
checks (`mop_bench.lm.doctor`); `require_scoring_ok(lm)` there refuses to score
through a server that failed it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import numpy as np

from mop_bench.lm.base import Completion, LMStats, Prompt, RawPrompt, SequenceScore
from mop_bench.lm.chat import as_messages, continues_assistant, render_chat
from mop_bench.lm.http import HTTPClient, ServerError, one_line, public_url
from mop_bench.lm.openai_answers import Echo, _prompt_logprobs, first_choice

__all__ = ["Echo", "OpenAICompatLM", "ServerError", "render_chat"]


class OpenAICompatLM:
    """`LanguageModel` over HTTP. Requests run `concurrency` at a time (servers batch
    concurrent requests themselves); each carries its own `seed` and `temperature`, so
    determinism is as good as the server's seeded sampling (`mop-bench doctor` checks).

    `tokenizer` (a name for `mop_bench.lm.loading.load_tokenizer`, or a tokenizer) is
    the model's, used to render chat templates for scoring; it defaults to `model`, so
    serve the model under its alias or Hub id (`--served-model-name`). `extra_body`
    is merged into every generation request (engine-specific options such as vLLM's
    `min_tokens`)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        concurrency: int = 8,
        retries: int = 3,
        chat: bool = True,
        progress: bool = False,
        tokenizer: Any = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        if not base.endswith("/v1"):
            base += "/v1"
        self.base_url = base
        self.model = model
        self.chat = chat
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self.http = HTTPClient(base, api_key=api_key, timeout=timeout, retries=retries)
        # the identity recorded with results: no credentials, no query string
        self.name = f"{model} [openai-compatible {public_url(base)}]"
        self.stats = LMStats()
        self._tokenizer = tokenizer
        self.extra_body = dict(extra_body or {})
        self._info: dict[str, Any] | None = None

    # -- the server ------------------------------------------------------------------

    def server_info(self) -> dict[str, Any]:
        """Engine, version and served models (asked once). Raises ServerError if the
        server is down or does not serve `model`."""
        if self._info is not None:
            return self._info
        listing = self.http.request("models")
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise ServerError(
                f"{self.http.public}/models: not a model list: {one_line(str(listing))}"
            )
        served = [str(m.get("id")) for m in data if isinstance(m, dict)]
        if self.model not in served:
            raise ServerError(
                f"the server at {self.http.public} does not serve model {self.model!r}; "
                f"it serves: {', '.join(served) or 'nothing'} (pass one of these as --model)"
            )
        owner = next(str(m.get("owned_by")) for m in data if m.get("id") == self.model)
        engine = {"vllm": "vllm", "llamacpp": "llama.cpp", "me": "llama-cpp-python"}.get(
            owner, "unknown"
        )
        version = None
        if engine == "vllm":
            try:
                version = str(self.http.request("/version").get("version"))
            except (ServerError, AttributeError):
                version = None
        self._info = {
            "url": self.http.public,
            "model": self.model,
            "engine": engine,
            "engine_version": version,
            "owned_by": owner,
        }
        return self._info

    @property
    def engine(self) -> str:
        return str(self.server_info()["engine"])

    def describe(self) -> dict[str, Any]:
        """What to record with results: the public URL, model, engine and its version."""
        return {"backend": "openai", **self.server_info()}

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None or isinstance(self._tokenizer, str):
            from mop_bench.lm.loading import load_tokenizer

            name = self._tokenizer or self.model
            try:
                self._tokenizer = load_tokenizer(name)
            except (OSError, ValueError) as err:
                raise ValueError(
                    f"{self.name}: scoring and continuing assistant turns render the chat "
                    f"template locally, which needs the model's tokenizer; loading {name!r} "
                    f"failed ({one_line(str(err), 200)}). Serve the model under its alias or "
                    f"Hub id, or pass tokenizer="
                ) from None
        return self._tokenizer

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any], desc: str) -> list[Any]:
        """fn over items, `concurrency` at a time, results in input order. On the first
        failure the requests not yet started are cancelled and the error raised."""
        from tqdm.auto import tqdm

        results: list[Any] = [None] * len(items)
        bar = tqdm(total=len(items), desc=desc, disable=not self.progress, leave=False)
        with ThreadPoolExecutor(self.concurrency) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            try:
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update(1)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            finally:
                bar.close()
        return results

    # -- generate --------------------------------------------------------------------

    def generation_request(
        self,
        prompt: Prompt,
        *,
        temperature: float,
        seed: int,
        max_tokens: int,
        top_p: float,
        stop: Sequence[str] = (),
    ) -> tuple[str, dict[str, Any]]:
        """The (route, body) the adapter sends to generate from `prompt`. A `RawPrompt`
        (completion style) always goes to /v1/completions, as is."""
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
            **self.extra_body,
        }
        if stop:
            body["stop"] = list(stop)
        if isinstance(prompt, RawPrompt):
            return "completions", {**body, "prompt": prompt.text}
        if isinstance(prompt, str) and not self.chat:
            return "completions", {**body, "prompt": prompt}
        if continues_assistant(prompt) and self.engine != "vllm":
            # only vLLM continues a final assistant message; elsewhere render it here
            text = render_chat(self.tokenizer, prompt)
            return "completions", {**body, "prompt": text}
        body["messages"] = as_messages(prompt)
        if continues_assistant(prompt):
            body |= {"continue_final_message": True, "add_generation_prompt": False}
        return "chat/completions", body

    def _generate_one(
        self, args: tuple[Prompt, float, int, int, float, tuple[str, ...], int]
    ) -> Completion:
        prompt, temperature, seed, max_new_tokens, top_p, stop, min_tokens = args
        route, body = self.generation_request(
            prompt,
            temperature=temperature,
            seed=seed,
            max_tokens=max_new_tokens,
            top_p=top_p,
            stop=stop,
        )
        if min_tokens:
            body["min_tokens"] = min_tokens
        answer = self.http.request(route, body)
        choice = first_choice(answer, route)
        if route == "completions":
            text = choice.get("text")
        else:
            text = (choice.get("message") or {}).get("content")
        if not isinstance(text, str):
            raise ServerError(
                f"/{route}: the answer has no generated text: {one_line(str(answer))}"
            )
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
        stop: Sequence[str] = (),
        min_new_tokens: int = 0,
    ) -> list[Completion]:
        """One request per prompt. `min_new_tokens` goes out as `min_tokens`, a vLLM
        extension of the OpenAI API (other servers may ignore it: texts can end early). n_tokens is the server's `usage.completion_tokens`
        (-1 where the server does not report usage). `stop` goes to the server, which
        ends the text there (and leaves the stop out)."""
        if len(temperatures) != len(prompts) or len(seeds) != len(prompts):
            raise ValueError(
                f"generate: {len(prompts)} prompts but {len(temperatures)} temperatures "
                f"and {len(seeds)} seeds"
            )
        if max_new_tokens < 1:
            # 0 means "unlimited" on llama-cpp-python: never send it
            raise ValueError(f"generate: max_new_tokens must be >= 1, got {max_new_tokens}")
        start = time.perf_counter()
        jobs = [
            (
                p,
                float(t),
                int(s),
                int(max_new_tokens),
                float(top_p),
                tuple(stop),
                int(min_new_tokens),
            )
            for p, t, s in zip(prompts, temperatures, seeds, strict=True)
        ]
        out = self._map(self._generate_one, jobs, "generate")
        self.stats.add_generate(
            len(out), sum(max(c.n_tokens, 0) for c in out), time.perf_counter() - start
        )
        return out

    # -- score -----------------------------------------------------------------------

    def render(self, prompt: Prompt) -> tuple[str, bool]:
        """(text, rendered): the prompt as scoring sends it, and whether it is a
        rendered chat template (which carries its own special tokens, so the server
        must not add a BOS again, as the transformers backend does not)."""
        if isinstance(prompt, RawPrompt):
            return prompt.text, False
        if isinstance(prompt, str) and not self.chat:
            return prompt, False
        return render_chat(self.tokenizer, prompt), True

    def echo(self, text: str, *, rendered: bool = False) -> Echo:
        """Echoed log-probs of every token of `text` (one generated token, at T = 1)."""
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": text,
            "max_tokens": 1,
            "echo": True,
            "logprobs": 1,
            "temperature": 1.0,
        }
        vllm = self.engine == "vllm"
        if vllm:
            body["prompt_logprobs"] = 0
            if rendered:
                body["add_special_tokens"] = False
        answer = self.http.request("completions", body)
        choice = first_choice(answer, "completions")
        logprobs = choice.get("logprobs") or {}
        values, offsets = logprobs.get("token_logprobs"), logprobs.get("text_offset")
        tokens = logprobs.get("tokens")
        if not (
            isinstance(values, list)
            and isinstance(offsets, list)
            and isinstance(tokens, list)
            and len(values) == len(offsets) == len(tokens)
        ):
            raise ServerError(
                f"{self.http.public}: the server did not echo prompt log-probs (scoring needs "
                f"token_logprobs, tokens and text_offset from /v1/completions with echo=True "
                f"and logprobs): {one_line(str(answer))}"
            )
        usage = answer.get("usage") or {}
        ids = None
        if vllm:
            ids, values = _prompt_logprobs(choice, values, len(text), offsets)
        return Echo(
            text=text,
            tokens=[str(t) for t in tokens],
            offsets=[int(o) for o in offsets],
            values=[None if v is None else float(v) for v in values],
            prompt_tokens=usage.get("prompt_tokens"),
            token_ids=ids,
        )

    def _score_one(self, args: tuple[str, bool, str, int | None, bool]) -> SequenceScore:
        prompt, rendered, continuation, max_tokens, per_token = args
        echo = self.echo(prompt + continuation, rendered=rendered)
        end = len(prompt + continuation)
        # Entries starting inside the continuation; the generated one starts at `end`.
        # A token straddling the boundary (the tokenizer merged prompt and
        # continuation) counts as prompt, as text_offset says it starts there.
        picked = [i for i, o in enumerate(echo.offsets) if len(prompt) <= o < end]
        if continuation and not picked:
            raise ServerError(
                f"{self.http.public}: no echoed token starts inside the continuation "
                f"{one_line(continuation, 60)!r}; cannot score it"
            )
        if max_tokens is not None:
            picked = picked[:max_tokens]
        values = [echo.values[i] for i in picked]
        if any(v is None for v in values):
            raise ServerError(
                f"{self.http.public}: the echo has no log-prob for a continuation token "
                f"(text_offset {[echo.offsets[i] for i in picked]})"
            )
        tokens = np.asarray(values, dtype=np.float64).reshape(-1, 1)
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
        if len(temperatures) != 1 or float(temperatures[0]) != 1.0:
            raise NotImplementedError(
                f"{self.name}: OpenAI-compatible servers only return log-probs at temperature "
                f"1.0 (asked for {list(temperatures)}); fit temperatures with the transformers "
                f"backend, which scores any temperature grid in one pass"
            )
        if len(prompts) != len(continuations):
            raise ValueError(
                f"score: {len(prompts)} prompts but {len(continuations)} continuations"
            )
        if max_tokens is not None and max_tokens < 0:
            raise ValueError(f"score: max_tokens must be >= 0, got {max_tokens}")
        start = time.perf_counter()
        jobs = []
        for p, c in zip(prompts, continuations, strict=True):
            text, rendered = self.render(p)
            jobs.append((text, rendered, c, max_tokens, per_token))
        out = self._map(self._score_one, jobs, "score")
        self.stats.add_score(len(out), sum(s.n_tokens for s in out), time.perf_counter() - start)
        return out
