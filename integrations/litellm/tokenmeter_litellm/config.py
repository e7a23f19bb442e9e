"""Configuration: constructor arguments first, then TOKENMETER_* environment variables, then
defaults. Checked once, when the callback is created, so a typo fails the proxy's start instead
of every call."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from .event import ACCOUNT_SOURCES, API_KEY_SOURCES, EventMapping

DEFAULT_TOPIC = "gateway.usage.v1"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    brokers: str
    topic: str
    mapping: EventMapping
    producer_config: Mapping[str, Any]
    flush_timeout_s: float
    report_cache_hits: bool


def _list(name: str, value: Any, allowed: Sequence[str]) -> tuple:
    items = [s.strip() for s in value.split(",")] if isinstance(value, str) else list(value)
    items = [s for s in items if s != ""]
    unknown = [s for s in items if s not in allowed]
    if unknown:
        raise ConfigError(f"{name}: unknown source(s) {unknown}; use any of {list(allowed)}, comma-separated")
    return tuple(items)


def _json_object(name: str, value: Any) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{name} is not valid JSON: {err}") from None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a JSON object")
    return dict(value)


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def load_config(
    brokers: Optional[str] = None,
    topic: Optional[str] = None,
    account_from: Optional[Any] = None,
    default_account_id: Optional[str] = None,
    api_key_from: Optional[Any] = None,
    model_map: Optional[Mapping[str, str]] = None,
    producer_config: Optional[Mapping[str, Any]] = None,
    flush_timeout_s: Optional[float] = None,
    report_cache_hits: Optional[bool] = None,
    env: Mapping[str, str] = os.environ,
) -> Config:
    def pick(arg: Any, var: str, default: Any) -> Any:
        if arg is not None:
            return arg
        return env[var] if var in env and env[var] != "" else default

    brokers = pick(brokers, "TOKENMETER_KAFKA_BROKERS", None)
    if not brokers:
        raise ConfigError("TOKENMETER_KAFKA_BROKERS (or brokers=) is required, e.g. kafka-1:9092,kafka-2:9092")
    models = _json_object("TOKENMETER_MODEL_MAP", pick(model_map, "TOKENMETER_MODEL_MAP", {}))
    bad = [k for k, v in models.items() if not isinstance(v, str) or v == ""]
    if bad:
        raise ConfigError(f"TOKENMETER_MODEL_MAP: {bad} must map to a non-empty Tokenmeter model name")
    api_key_sources = pick(api_key_from, "TOKENMETER_API_KEY_FROM", "hash")
    try:
        flush_timeout = float(pick(flush_timeout_s, "TOKENMETER_FLUSH_TIMEOUT_S", 10))
    except ValueError:
        raise ConfigError("TOKENMETER_FLUSH_TIMEOUT_S must be a number of seconds") from None
    return Config(
        brokers=str(brokers),
        topic=str(pick(topic, "TOKENMETER_KAFKA_TOPIC", DEFAULT_TOPIC)),
        mapping=EventMapping(
            account_from=_list("TOKENMETER_ACCOUNT_FROM", pick(account_from, "TOKENMETER_ACCOUNT_FROM", ACCOUNT_SOURCES), ACCOUNT_SOURCES),
            default_account_id=pick(default_account_id, "TOKENMETER_DEFAULT_ACCOUNT_ID", None),
            # "none": no api_key_id at all.
            api_key_from=() if api_key_sources == "none" else _list("TOKENMETER_API_KEY_FROM", api_key_sources, API_KEY_SOURCES),
            model_map=models,
        ),
        producer_config=_json_object("TOKENMETER_KAFKA_CONFIG", pick(producer_config, "TOKENMETER_KAFKA_CONFIG", {})),
        flush_timeout_s=flush_timeout,
        report_cache_hits=_bool("TOKENMETER_REPORT_CACHE_HITS", pick(report_cache_hits, "TOKENMETER_REPORT_CACHE_HITS", False)),
    )
