"""The LiteLLM callback: one usage event per successful call, published to Kafka.

Publishing never raises into LiteLLM and never waits for the broker: `produce` only queues the
message for librdkafka's own threads, which retry until `message.timeout.ms`. What still fails is
logged at ERROR with the whole event, so it can be replayed (same event_id: a duplicate if it did
land after all).
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
from typing import Any, Mapping, Optional

from confluent_kafka import KafkaError, Producer
from litellm.integrations.custom_logger import CustomLogger

from .config import Config, load_config
from .event import NoUsage, build_event

log = logging.getLogger("tokenmeter_litellm")


class UsagePublisher:
    """A Kafka producer for `gateway.usage.v1`: idempotent, acks from all in-sync replicas, keyed
    by account so that an account's events stay in order on one partition."""

    def __init__(self, config: Config) -> None:
        self.topic = config.topic
        self.flush_timeout_s = config.flush_timeout_s
        self.delivered = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._closed = False
        self._producer = Producer(
            {
                "bootstrap.servers": config.brokers,
                "client.id": "tokenmeter-litellm",
                # Retries inside librdkafka can then neither duplicate nor reorder a message.
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                # Kafka's default partitioner for keyed messages (the Java client's, kafkajs' and
                # @tokenmeter/gateway-client's): librdkafka's own default (CRC32) would put an
                # account on another partition than the other publishers do.
                "partitioner": "murmur2_random",
                **config.producer_config,
                "error_cb": self._on_error,
                # librdkafka's own log lines through Python logging, not straight to stderr.
                "logger": log,
            }
        )

    def publish(self, event: Mapping[str, Any]) -> bool:
        """Queues one event; False (and an ERROR log) when it could not even be queued."""
        value = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        account_id = event.get("account_id")
        try:
            self._producer.produce(
                self.topic,
                value=value.encode("utf-8"),
                key=account_id.encode("utf-8") if isinstance(account_id, str) else None,
                on_delivery=lambda err, msg: self._on_delivery(err, value),
            )
        except Exception as err:  # BufferError when librdkafka's local queue is full, KafkaException
            self._count_failure()
            log.error("tokenmeter: usage event not queued (%s): %s", err, value)
            return False
        self._producer.poll(0)  # serve delivery reports of earlier messages
        return True

    def close(self) -> int:
        """Waits up to flush_timeout_s for queued events; returns how many were left undelivered."""
        with self._lock:
            if self._closed:
                return 0
            self._closed = True
        left = self._producer.flush(self.flush_timeout_s)
        if left > 0:
            log.error("tokenmeter: %d usage event(s) still undelivered after %.1f s at shutdown", left, self.flush_timeout_s)
        return left

    def _count_failure(self) -> None:
        with self._lock:
            self.failed += 1

    def _on_delivery(self, err: Optional[KafkaError], value: str) -> None:
        if err is None:
            with self._lock:
                self.delivered += 1
            return
        self._count_failure()
        log.error("tokenmeter: usage event not delivered to %s (%s): %s", self.topic, err, value)

    @staticmethod
    def _on_error(err: KafkaError) -> None:
        # Broker unreachable and the like: librdkafka keeps retrying; messages fail only at
        # message.timeout.ms, through _on_delivery.
        log.warning("tokenmeter: kafka: %s", err)


class TokenmeterLogger(CustomLogger):
    """Register in `litellm.callbacks` (SDK) or in the proxy's `litellm_settings.callbacks`.

    Arguments override the TOKENMETER_* environment variables (see README.md): brokers, topic,
    account_from, default_account_id, api_key_from, model_map, producer_config, flush_timeout_s,
    report_cache_hits.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.config = load_config(**options)
        self.publisher = UsagePublisher(self.config)
        atexit.register(self.close)

    def log_success_event(self, kwargs, response_obj, start_time, end_time):  # noqa: D401 (LiteLLM's names)
        self._report(kwargs, response_obj, end_time)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        # produce() only queues: nothing here blocks the event loop.
        self._report(kwargs, response_obj, end_time)

    def close(self) -> int:
        """Flushes what is queued (also run at interpreter exit)."""
        return self.publisher.close()

    def _report(self, kwargs: Mapping, response_obj: Any, end_time: Any) -> None:
        try:
            slo = kwargs.get("standard_logging_object") or {}
            if slo.get("cache_hit") and not self.config.report_cache_hits:
                # Answered from LiteLLM's response cache: no provider call, no tokens to bill.
                return
            event = build_event(kwargs, response_obj, end_time, self.config.mapping)
            if "account_id" not in event:
                log.warning(
                    "tokenmeter: call %s maps to no account (account_from=%s, no default): published without account_id, "
                    "Tokenmeter will dead-letter it",
                    event["request_id"],
                    ",".join(self.config.mapping.account_from),
                )
            self.publisher.publish(event)
        except NoUsage as why:
            log.warning("tokenmeter: call %s not reported: %s", kwargs.get("litellm_call_id"), why)
        except Exception:  # a reporting bug must never fail the LLM call
            log.exception("tokenmeter: usage of call %s not reported", kwargs.get("litellm_call_id"))
