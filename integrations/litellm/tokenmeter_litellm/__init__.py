"""Tokenmeter usage events from LiteLLM: `TokenmeterLogger` is a LiteLLM CustomLogger that
publishes one `gateway.usage.v1` event per successful call. See README.md."""

from .config import ConfigError, load_config
from .event import EVENT_ID_NAMESPACE, build_event, event_id_for, usage_from_litellm
from .logger import TokenmeterLogger, UsagePublisher

__all__ = [
    "EVENT_ID_NAMESPACE",
    "ConfigError",
    "TokenmeterLogger",
    "UsagePublisher",
    "build_event",
    "event_id_for",
    "load_config",
    "usage_from_litellm",
]
