"""Unit checks of the mapping rules (no broker): `python -m unittest discover -s tests` from
integrations/litellm, with the venv of scripts/ensure-litellm.sh. test/e2e/litellm.test.ts runs
them too."""

import os
import unittest
from datetime import datetime, timedelta, timezone

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no download

from tokenmeter_litellm.config import ConfigError, load_config
from tokenmeter_litellm.event import EventMapping, NoUsage, build_event, event_id_for, occurred_at, tokenmeter_model, usage_from_litellm

END = datetime(2026, 11, 15, 12, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))


def call(**slo):
    meta = slo.pop("metadata", {})
    return {
        "litellm_call_id": "call-1",
        "model": "deepseek-reasoner",
        "custom_llm_provider": "deepseek",
        "standard_logging_object": {"model_group": "", "hidden_params": {}, "metadata": meta, **slo},
    }


class EventIdTest(unittest.TestCase):
    def test_uuid5_of_the_request_id_in_the_documented_namespace(self):
        # The example of docs/event-contract.md ("Deriving event_id").
        self.assertEqual(event_id_for("req_8d1e"), "00ef7942-6d4f-5086-a7b4-8522923eda8f")
        self.assertEqual(event_id_for("req_8d1e"), event_id_for("req_8d1e"))
        self.assertNotEqual(event_id_for("req_8d1e"), event_id_for("req_8d1f"))


class OccurredAtTest(unittest.TestCase):
    def test_aware_times_are_converted_to_utc_and_cut_to_milliseconds(self):
        self.assertEqual(occurred_at(END), "2026-11-15T10:30:00.123Z")

    def test_naive_times_are_local_time_as_litellm_writes_them(self):
        naive = END.astimezone().replace(tzinfo=None)  # what datetime.now() gives
        self.assertEqual(occurred_at(naive), "2026-11-15T10:30:00.123Z")

    def test_epoch_seconds(self):
        self.assertEqual(occurred_at(END.timestamp()), "2026-11-15T10:30:00.123Z")


class UsageTest(unittest.TestCase):
    def test_openai_shape_without_nulls_and_without_provider_keys(self):
        # LiteLLM's Usage of a DeepSeek response keeps DeepSeek's own keys next to its own.
        usage = {
            "prompt_tokens": 1000,
            "completion_tokens": 50,
            "total_tokens": 1050,
            "prompt_cache_hit_tokens": 640,
            "prompt_cache_miss_tokens": 360,
            "cost": 1.2e-06,
            "prompt_tokens_details": {"cached_tokens": 640, "audio_tokens": None},
            "completion_tokens_details": {"reasoning_tokens": None},
        }
        self.assertEqual(
            usage_from_litellm(usage),
            {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050, "prompt_tokens_details": {"cached_tokens": 640}},
        )

    def test_cache_writes_make_it_canonical_with_disjoint_buckets(self):
        # As LiteLLM reports Anthropic prompt caching: prompt_tokens includes reads and writes.
        usage = {
            "prompt_tokens": 3000,
            "completion_tokens": 300,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 500,
            "prompt_tokens_details": {"cached_tokens": 1000, "cache_creation_tokens": 500, "cache_write_tokens": 500},
        }
        self.assertEqual(
            usage_from_litellm(usage),
            {"input_tokens": 1500, "output_tokens": 300, "cache_read_tokens": 1000, "cache_write_tokens": 500, "reasoning_tokens": 0},
        )

    def test_no_token_usage_is_not_reported(self):
        with self.assertRaises(NoUsage):
            usage_from_litellm(None)
        with self.assertRaises(NoUsage):
            usage_from_litellm({"total_tokens": 0})


class MappingTest(unittest.TestCase):
    USAGE = {"usage": {"prompt_tokens": 1, "completion_tokens": 1}}

    def test_account_from_the_first_source_that_is_set_then_the_default(self):
        kwargs = call(end_user=None, metadata={"user_api_key_team_id": "team-a", "user_api_key_org_id": "org-a"})
        self.assertEqual(build_event(kwargs, self.USAGE, END, EventMapping(account_from=("end_user", "team")))["account_id"], "team-a")
        self.assertEqual(build_event(kwargs, self.USAGE, END, EventMapping(account_from=("org", "team")))["account_id"], "org-a")
        self.assertEqual(build_event(kwargs, self.USAGE, END, EventMapping(account_from=("user",), default_account_id="acct_x"))["account_id"], "acct_x")
        self.assertNotIn("account_id", build_event(kwargs, self.USAGE, END, EventMapping(account_from=("user",))))

    def test_api_key_alias_or_hash_or_none(self):
        kwargs = call(end_user="acct", metadata={"user_api_key_hash": "h1", "user_api_key_alias": "a1"})
        self.assertEqual(build_event(kwargs, self.USAGE, END, EventMapping(api_key_from=("hash",)))["api_key_id"], "h1")
        self.assertEqual(build_event(kwargs, self.USAGE, END, EventMapping(api_key_from=("alias", "hash")))["api_key_id"], "a1")
        self.assertIsNone(build_event(kwargs, self.USAGE, END, EventMapping(api_key_from=()))["api_key_id"])

    def test_model_map_prefers_the_proxys_public_name_then_provider_model(self):
        kwargs = call(model_group="reasoner")
        both = EventMapping(model_map={"reasoner": "deepseek-r1", "deepseek/deepseek-reasoner": "other"})
        self.assertEqual(tokenmeter_model(kwargs, both), "deepseek-r1")
        self.assertEqual(tokenmeter_model(kwargs, EventMapping(model_map={"deepseek/deepseek-reasoner": "deepseek-r1"})), "deepseek-r1")
        # Unmapped: the public name, else the bare model name.
        self.assertEqual(tokenmeter_model(kwargs, EventMapping()), "reasoner")
        self.assertEqual(tokenmeter_model(call(), EventMapping()), "deepseek-reasoner")


class ConfigTest(unittest.TestCase):
    def test_arguments_override_the_environment(self):
        env = {"TOKENMETER_KAFKA_BROKERS": "k1:9092", "TOKENMETER_ACCOUNT_FROM": "team", "TOKENMETER_MODEL_MAP": '{"a/b": "c"}'}
        config = load_config(account_from=["org", "user"], env=env)
        self.assertEqual((config.brokers, config.topic), ("k1:9092", "gateway.usage.v1"))
        self.assertEqual(config.mapping.account_from, ("org", "user"))
        self.assertEqual(dict(config.mapping.model_map), {"a/b": "c"})
        self.assertEqual(load_config(env={**env, "TOKENMETER_API_KEY_FROM": "none"}).mapping.api_key_from, ())

    def test_mistakes_fail_at_start(self):
        for env, message in [
            ({}, "TOKENMETER_KAFKA_BROKERS"),
            ({"TOKENMETER_KAFKA_BROKERS": "k", "TOKENMETER_ACCOUNT_FROM": "team,tenant"}, "tenant"),
            ({"TOKENMETER_KAFKA_BROKERS": "k", "TOKENMETER_MODEL_MAP": "{deepseek: r1}"}, "not valid JSON"),
            ({"TOKENMETER_KAFKA_BROKERS": "k", "TOKENMETER_REPORT_CACHE_HITS": "maybe"}, "true or false"),
        ]:
            with self.subTest(env=env):
                with self.assertRaisesRegex(ConfigError, message):
                    load_config(env=env)


if __name__ == "__main__":
    unittest.main()
