"""Turns what LiteLLM hands a success callback into one `gateway.usage.v1` event.

Pure: no Kafka and no LiteLLM imports, so the mapping rules can be checked without either.
The contract is docs/event-contract.md in the Tokenmeter repository.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

# event_id = UUIDv5(EVENT_ID_NAMESPACE, request_id). The namespace is itself
# uuid5(NAMESPACE_URL, "https://tokenmeter.internal/schemas/gateway.usage.v1.json") (the schema's
# $id), written out so that any publisher can derive the same id from the same request id; see
# "Deriving event_id" in docs/event-contract.md.
EVENT_ID_NAMESPACE = uuid.UUID("7943717a-0c42-52c4-ab95-fcc2d6d76295")

ACCOUNT_SOURCES = ("end_user", "team", "user", "org")
API_KEY_SOURCES = ("hash", "alias")


def event_id_for(request_id: str) -> str:
    """The idempotency key of a call: the same call id always gives the same event id, so a
    repeated report of one call is a duplicate in Tokenmeter, never a second charge."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, request_id))


@dataclass(frozen=True)
class EventMapping:
    """How LiteLLM's identities and model names become Tokenmeter's (see config.py)."""

    account_from: Sequence[str] = ACCOUNT_SOURCES
    default_account_id: Optional[str] = None
    api_key_from: Sequence[str] = ("hash",)
    model_map: Mapping[str, str] = field(default_factory=dict)


class NoUsage(Exception):
    """The call reported no token usage (an image, speech or rerank call): nothing to price."""


def occurred_at(end_time: Any) -> str:
    """RFC 3339 UTC with milliseconds. LiteLLM passes `datetime.now()`: naive and in local time,
    which `astimezone` reads as local; an aware datetime or an epoch number is converted as is."""
    if isinstance(end_time, datetime):
        instant = end_time.astimezone(timezone.utc)
    elif isinstance(end_time, (int, float)) and not isinstance(end_time, bool):
        instant = datetime.fromtimestamp(end_time, tz=timezone.utc)
    else:
        raise TypeError(f"end_time must be a datetime or an epoch number, got {type(end_time).__name__}")
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def _plain(value: Any) -> Any:
    """A pydantic model (LiteLLM's Usage and its details) as a plain dict; dicts as they are."""
    if value is None or isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    return dict(value.__dict__) if hasattr(value, "__dict__") else value


def _count(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _counts(details: Any) -> dict:
    """The integer entries of a *_tokens_details object (None means 0 in the contract: dropped)."""
    details = _plain(details)
    if not isinstance(details, Mapping):
        return {}
    return {k: v for k, v in details.items() if _count(v) is not None}


def usage_from_litellm(raw_usage: Any) -> dict:
    """LiteLLM's Usage as a usage object the contract accepts.

    LiteLLM normalises every provider to OpenAI's Chat Completions form (`prompt_tokens` includes
    the cached tokens), which is what is sent. It is not forwarded verbatim: LiteLLM also keeps the
    provider's own keys on it (Anthropic's `cache_read_input_tokens` next to `prompt_tokens`), and
    Tokenmeter refuses a usage object with keys of two shapes as ambiguous.

    OpenAI's shape has no cache writes, so a call that reports some (Anthropic prompt caching:
    `prompt_tokens_details.cache_creation_tokens`) is sent in the canonical shape instead, with
    disjoint buckets: otherwise its cache writes would be charged as input, at the input rate.
    """
    usage = _plain(raw_usage)
    if not isinstance(usage, Mapping):
        raise NoUsage("no usage object")
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    if prompt is None:
        raise NoUsage("usage has no prompt_tokens")
    completion = completion or 0
    prompt_details = _counts(usage.get("prompt_tokens_details"))
    completion_details = _counts(usage.get("completion_tokens_details"))
    cached = prompt_details.get("cached_tokens", 0)
    reasoning = completion_details.get("reasoning_tokens", 0)
    cache_write = (
        prompt_details.get("cache_creation_tokens")
        or prompt_details.get("cache_write_tokens")
        or _count(usage.get("cache_creation_input_tokens"))
        or 0
    )
    if cache_write > 0:
        # LiteLLM's prompt_tokens includes cache reads and writes (its Anthropic mapping adds them).
        return {
            "input_tokens": prompt - cached - cache_write,
            "output_tokens": completion,
            "cache_read_tokens": cached,
            "cache_write_tokens": cache_write,
            "reasoning_tokens": reasoning,
        }
    out: dict = {"prompt_tokens": prompt, "completion_tokens": completion}
    total = _count(usage.get("total_tokens"))
    if total is not None:
        out["total_tokens"] = total
    if prompt_details:
        out["prompt_tokens_details"] = prompt_details
    if completion_details:
        out["completion_tokens_details"] = completion_details
    return out


def _first(*values: Any) -> Optional[str]:
    for value in values:
        if isinstance(value, str) and value != "":
            return value
    return None


def account_id_for(kwargs: Mapping, mapping: EventMapping) -> Optional[str]:
    """The first configured source that is set, else the default account (None: none applies)."""
    slo = kwargs.get("standard_logging_object") or {}
    meta = slo.get("metadata") or {}
    sources = {
        # The proxy fills user_api_key_end_user_id (and end_user) from the request's `user`; an
        # SDK caller passes `user=` directly.
        "end_user": lambda: _first(slo.get("end_user"), meta.get("user_api_key_end_user_id"), kwargs.get("user")),
        "team": lambda: _first(meta.get("user_api_key_team_id")),
        "user": lambda: _first(meta.get("user_api_key_user_id")),
        "org": lambda: _first(meta.get("user_api_key_org_id")),
    }
    for source in mapping.account_from:
        value = sources[source]()
        if value is not None:
            return value
    return mapping.default_account_id


def api_key_id_for(kwargs: Mapping, mapping: EventMapping) -> Optional[str]:
    meta = (kwargs.get("standard_logging_object") or {}).get("metadata") or {}
    sources = {"hash": "user_api_key_hash", "alias": "user_api_key_alias"}
    return _first(*(meta.get(sources[s]) for s in mapping.api_key_from))


def provider_model(kwargs: Mapping) -> Optional[str]:
    """`provider/model` as written in the request or the proxy's model_list
    (`deepseek/deepseek-reasoner`); LiteLLM's `model` kwarg is the bare `deepseek-reasoner`."""
    slo = kwargs.get("standard_logging_object") or {}
    model = kwargs.get("model")
    provider = kwargs.get("custom_llm_provider") or slo.get("custom_llm_provider")
    return _first((slo.get("hidden_params") or {}).get("litellm_model_name"), f"{provider}/{model}" if provider and model else None)


def tokenmeter_model(kwargs: Mapping, mapping: EventMapping) -> str:
    """The price book's name for the model. The map is looked up with the names LiteLLM knows the
    model by, the operator's first: the proxy's public model name (`model_group`), then
    `provider/model`, then the bare model name. Unmapped, it is the public model name, else the
    bare one: Tokenmeter stores an unknown model unpriced and prices it once the price book has
    it, so nothing is lost."""
    slo = kwargs.get("standard_logging_object") or {}
    public = _first(slo.get("model_group"))
    bare = _first(kwargs.get("model"), slo.get("model"))
    for name in (public, provider_model(kwargs), bare):
        if name is not None and name in mapping.model_map:
            return mapping.model_map[name]
    model = public or bare
    if model is None:
        raise NoUsage("the call names no model")
    return model


def _metadata(kwargs: Mapping) -> dict:
    """For support: which LiteLLM deployment served the call (stored verbatim by Tokenmeter)."""
    slo = kwargs.get("standard_logging_object") or {}
    meta = {"gateway": "litellm", "litellm_model": provider_model(kwargs) or _first(kwargs.get("model"))}
    public = _first(slo.get("model_group"))
    if public is not None:
        meta["model_group"] = public
    return meta


def build_event(kwargs: Mapping, response_obj: Any, end_time: Any, mapping: EventMapping) -> dict:
    """One usage event for a successful call. Deterministic in its inputs, so reporting the same
    call again produces the same payload (a duplicate, not a conflict). Without an account the
    event is still built, without `account_id`: Tokenmeter then dead-letters it with a reason
    naming the field, so it is visible and can be replayed instead of being lost."""
    request_id = kwargs.get("litellm_call_id")
    if not isinstance(request_id, str) or request_id == "":
        raise ValueError("the call has no litellm_call_id")
    slo = kwargs.get("standard_logging_object") or {}
    raw_usage = getattr(response_obj, "usage", None)
    if raw_usage is None and isinstance(response_obj, Mapping):
        raw_usage = response_obj.get("usage")
    if raw_usage is None:
        raw_usage = (slo.get("metadata") or {}).get("usage_object")
    event: dict = {"event_id": event_id_for(request_id), "occurred_at": occurred_at(end_time)}
    account_id = account_id_for(kwargs, mapping)
    if account_id is not None:
        event["account_id"] = account_id
    event.update(
        {
            "api_key_id": api_key_id_for(kwargs, mapping),
            "model": tokenmeter_model(kwargs, mapping),
            "request_id": request_id,
            "usage": usage_from_litellm(raw_usage),
            "metadata": _metadata(kwargs),
        }
    )
    return event
