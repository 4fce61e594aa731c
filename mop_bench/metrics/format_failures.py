"""Format: the share of synthetic texts that are not texts of the population at all.

A text fails when it

- **markup**: echoes the prompt's scaffolding: a pattern from
  `mop_bench.mop.prompts.leak_patterns` (tagged-chat tags, the task card's completion
  header or a persona line at a line start) or a chat-template token (`GENERIC_MARKUP`);
- **assistant**: reads as an assistant's reply instead of the requested text
  ("Sure! Here's a review...", "As an AI...", "I'm sorry, but I can't write...",
  "Let me know if you'd like...": `ASSISTANT_PATTERNS`);
- **empty**: has fewer than two word characters.

Such failures move FID, MAUVE and KL-cosine like any other difference, so without this
metric a broken prompt reads as "a worse simulator". The value is the share failing any
check (lower is better); real texts score ~0 (the calibration row).

Texts that end at the token cap (`capped`) are counted and reported but are NOT
failures: every simulator, and the length-matched `real` row, is cut at the same cap,
mostly mid-sentence, and from the text alone a cut mid-word cannot be told from a cut
after a whole word: "...the waiter" may be the start of "waiters", and only the next
token, never generated, would say. See docs/metrics.md.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from mop_bench.metrics.base import ScoreInputs
from mop_bench.types import MetricResult

#: The failure checks, in report order; `capped` is information only.
CHECKS = ("markup", "assistant", "empty")
#: Example indices listed per category in the details.
MAX_EXAMPLES = 5
#: Characters of a matched span kept with an example (enough to recognise it).
_MATCH_CHARS = 80

#: Chat-template markup that never belongs in a population's text, whatever the prompt:
#: special tokens such as <|im_start|> or <|assistant|> that survived decoding, and
#: Llama/Mistral instruction brackets.
GENERIC_MARKUP: tuple[str, ...] = (
    r"<\|[A-Za-z_][\w.-]{0,30}\|>",
    r"\[/?INST\]",
)

# Up to three non-word characters (quotes, "**", a dash) may precede an opening.
_OPEN = r"^[\W_]{0,3}"
_SORRY_VERBS = r"(?:write|provide|help (?:with|you)|assist|fulfill|create|generate|complete|comply)"

#: (name, regex) of assistant speech, matched case-insensitively. Each was checked
#: against every text of the yelp, imdb and ag_news mirrors (train and test, 71,539
#: texts): none matches a real text. Broader forms were dropped because they did:
#: "Sure, I like..." and "Of course I was..." (an opening "Sure" alone), "Here's a
#: horror version of..." and "Here's a review for people like me." (a "Here is" not
#: introducing the text with a colon), "(Note: I am from Australia..." (any "(Note:"),
#: "...according to your request" and "...enjoyed your review" (any "your request" or
#: "your review"), "feel free to substitute..." (any "feel free to"), "...in this review,
#: I apologize, but even..." (any "I apologize, but") and "i hope this helps anyone
#: curious" (not as a sign-off). The refusal needs "sorry, but I can't <verb>" because
#: "I'm sorry but I can't recommend it" is a review.
ASSISTANT_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "sure_opening",
        _OPEN + r"(?:sure|certainly|absolutely|of course)\b[!,.:]*\s+"
        r"(?:here(?:['’]s|\s+is|\s+are)\b|I(?:['’]d| would) be (?:happy|glad)"
        r"|I can (?:help|write|do that)|I(?:['’]ll| will) (?:write|create|generate|provide)"
        r"|below is|let me)",
    ),
    (
        "here_is_opening",
        # introduces the text with a colon or a line break, as an assistant does
        _OPEN + r"here(?:\s+is|['’]s|\s+are)\s+(?:\S+\s+){0,6}?"
        r"(?:review|article|text|story|summary|response|piece)s?\b[^.!?\n]{0,120}?(?::|\n|\Z)",
    ),
    (
        "as_an_ai",
        r"\b(?:as an? (?:AI|artificial intelligence|(?:large )?language model)"
        r"|I['’]m an AI|I am an AI)\b",
    ),
    (
        "refusal",
        r"\bI(?:['’]m| am) (?:sorry|afraid),? but I (?:can(?:no|['’])?t|cannot|am unable to"
        r"|['’]m unable to|won['’]t be able to) " + _SORRY_VERBS
        + r"|\bI (?:can(?:no|['’])?t|cannot|am unable to) (?:fulfill|comply with|assist with"
        r"|help with) (?:this|that|your)",
    ),
    (
        "apology",
        r"\bI apologi[sz]e(?:,? but I (?:can|am|won|don)"
        r"| for (?:any|the) (?:confusion|misunderstanding|inconvenience|error))",
    ),
    (
        "hope_this_helps",
        # only as a sign-off: at the end, or before more assistant talk
        r"\bI hope (?:this|that|it) helps\b[!.]?\s*(?:\Z|let me know|feel free|if you (?:have|need))",
    ),
    (
        "let_me_know",
        r"\blet me know if (?:you(?:['’]d| would)? (?:like|need|want|have any)"
        r"|there(?:['’]s| is) anything)",
    ),
    (
        "addresses_user",
        r"\b(?:as per|based on|in response to|to fulfill|here(?:['’]s|\s+is)) your "
        r"(?:request|prompt|instructions?)\b"
        r"|\b(?:here(?:\s+is|['’]s)|below is) your (?:review|article|text|story|requested)\b"
        r"|\b(?:review|article|text|story) you (?:requested|asked for)\b",
    ),
    ("feel_free", r"\bfeel free to (?:modify|adjust|edit|change|let me know|ask me|use (?:this|it))"),
    ("happy_to_help", r"\bI(?:['’]d| would) be (?:happy|glad) to (?:help|write|assist|provide|create|generate)"),
    (
        "note_disclaimer",
        r"\bnote:\s*(?:this|the above|the following)\s+(?:\w+\s+){0,3}?(?:is|was)\s+"
        r"(?:a\s+|an\s+)?(?:fictional|fictitious|made[- ]up|hypothetical|generated|sample|example)",
    ),
)  # fmt: skip

_ASSISTANT = tuple((name, re.compile(rx, re.IGNORECASE)) for name, rx in ASSISTANT_PATTERNS)
_WORD_CHAR = re.compile(r"\w")


def _compile(patterns: Sequence[str]) -> list[re.Pattern[str]]:
    out = []
    for rx in patterns:
        try:
            out.append(re.compile(rx))
        except re.error as exc:  # a broken pattern must fail the metric, not skip a check
            raise ValueError(f"format: markup pattern {rx!r} does not compile: {exc}") from exc
    return out


def _span(text: str, match: re.Match[str]) -> str:
    return text[match.start() : match.end()][:_MATCH_CHARS]


def markup_match(text: str, patterns: Sequence[re.Pattern[str]]) -> str | None:
    """The first span of `text` matching a markup pattern, else None."""
    for rx in patterns:
        m = rx.search(text)
        if m is not None:
            return _span(text, m) or rx.pattern[:_MATCH_CHARS]
    return None


def assistant_match(text: str) -> tuple[str, str] | None:
    """(pattern name, matched span) of the first assistant pattern in `text`, else None."""
    for name, rx in _ASSISTANT:
        m = rx.search(text)
        if m is not None:
            return name, _span(text, m)
    return None


def is_empty(text: str) -> bool:
    """Blank, or fewer than two word characters ("", "  ", ".", "a!")."""
    return len(_WORD_CHAR.findall(text)) < 2


def ended_at_cap(details: dict[str, Any]) -> bool | None:
    """Whether a text stopped at the token cap, from its generation details: `ended`
    ("stop" | "eos" | "cap") for generated texts, `truncated` for the real calibration's
    length-matched texts; None when the details record neither."""
    if "ended" in details:
        return details["ended"] == "cap"
    if "truncated" in details:
        return bool(details["truncated"])
    return None


def format_failures(
    texts: Sequence[str],
    *,
    markup_patterns: Sequence[str] | None = None,
    details: Sequence[dict[str, Any]] | None = None,
    max_new_tokens: int | None = None,
) -> MetricResult:
    """Share of texts failing a format check (markup, assistant, empty; lower is better).

    `markup_patterns`: the prompt's leak patterns (None: only `GENERIC_MARKUP` is
    checked, and the settings say so). `details`: each text's generation details, for
    the `capped` count (information, not a failure).
    """
    n = len(texts)
    if n == 0:
        raise ValueError("format: no synthetic texts to check")
    if details is not None and len(details) != n:
        raise ValueError(f"format: {len(details)} generation details for {n} texts")
    prompt_patterns = None if markup_patterns is None else list(markup_patterns)
    markup = _compile([*(prompt_patterns or []), *GENERIC_MARKUP])
    flags: dict[str, list[int]] = {c: [] for c in CHECKS}
    examples: dict[str, list[dict[str, Any]]] = {c: [] for c in CHECKS}
    by_pattern: dict[str, int] = {}

    def hit(check: str, i: int, match: str) -> None:
        flags[check].append(i)
        if len(examples[check]) < MAX_EXAMPLES:
            examples[check].append({"index": i, "match": match})

    for i, text in enumerate(texts):
        found = markup_match(text, markup)
        if found is not None:
            hit("markup", i, found)
        said = assistant_match(text)
        if said is not None:
            hit("assistant", i, said[1])
            by_pattern[said[0]] = by_pattern.get(said[0], 0) + 1
        if is_empty(text):
            hit("empty", i, repr(text[:_MATCH_CHARS]))  # visible even when blank
    failed = sorted(set().union(*flags.values()))
    out: dict[str, Any] = {"n": n, "n_failed": len(failed)}
    for check in CHECKS:
        out[check] = {
            "share": len(flags[check]) / n,
            "count": len(flags[check]),
            "examples": examples[check],
        }
    out["assistant"]["by_pattern"] = dict(sorted(by_pattern.items()))
    out["capped"] = _capped(details)
    # Every failing index (sample order), so a paired test can resample texts later.
    out["failed_indices"] = failed
    settings: dict[str, Any] = {
        "checks": list(CHECKS),
        "markup_patterns": prompt_patterns,
        "markup_source": "prompt leak patterns + chat-template tokens"
        if prompt_patterns is not None
        else "chat-template tokens only: the caller gave no prompt leak patterns",
        "generic_markup": list(GENERIC_MARKUP),
        "assistant_patterns": [name for name, _ in ASSISTANT_PATTERNS],
        "assistant_patterns_sha": hashlib.sha256(
            "\n".join(rx for _, rx in ASSISTANT_PATTERNS).encode()
        ).hexdigest()[:12],
        "empty": "fewer than 2 word characters",
        "capped": "information only, not a failure",
        "max_new_tokens": max_new_tokens,
    }
    return MetricResult("format", len(failed) / n, settings, out, higher_is_better=False)


def _capped(details: Sequence[dict[str, Any]] | None) -> dict[str, Any]:
    """How many texts ended at the token cap (None where the details cannot say)."""
    if details is None:
        return {"share": None, "count": None, "unknown": None, "examples": []}
    states = [ended_at_cap(d) for d in details]
    known = [i for i, s in enumerate(states) if s is not None]
    capped = [i for i, s in enumerate(states) if s]
    return {
        "share": len(capped) / len(known) if known else None,
        "count": len(capped),
        "unknown": len(states) - len(known),
        "examples": [{"index": i} for i in capped[:MAX_EXAMPLES]],
    }


def score(inputs: ScoreInputs) -> MetricResult:
    return format_failures(
        inputs.synth_texts,
        markup_patterns=inputs.leak_patterns,
        details=inputs.synth_details,
        max_new_tokens=inputs.max_new_tokens,
    )
