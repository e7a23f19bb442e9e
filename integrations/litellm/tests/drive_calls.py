"""Drives the real litellm package through the Tokenmeter callback, for test/e2e/litellm.test.ts.

Each call uses `mock_response`, so LiteLLM runs its whole request path (parameter mapping,
usage, logging) without a provider. The callback is loaded the way the LiteLLM proxy loads
`callbacks: ["tokenmeter_litellm.proxy.handler"]` from its config.yaml, and configured by the
TOKENMETER_* environment variables the test sets. The `metadata` of each call carries the
`user_api_key_*` fields the proxy adds for a virtual key.

Prints one JSON object: the call ids, the usage LiteLLM reported for each call, and the
publisher's delivery counts after the flush.
"""

import asyncio
import json
import os
import sys
import time
import uuid

assert os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP") == "True", "set LITELLM_LOCAL_MODEL_COST_MAP=True: no price map download"

import litellm  # noqa: E402
from litellm import ModelResponse, Usage  # noqa: E402
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402
from litellm.proxy.types_utils.utils import get_instance_fn  # noqa: E402

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]


class Recorder(CustomLogger):
    """Registered after the Tokenmeter handler: once it saw a call, the handler has too."""

    def __init__(self):
        super().__init__()
        self.seen = {}

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.seen[kwargs["litellm_call_id"]] = (kwargs, response_obj, start_time, end_time)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.log_success_event(kwargs, response_obj, start_time, end_time)


def virtual_key(key_hash, alias=None, end_user=None, team=None):
    """What the proxy puts in a call's metadata for the virtual key that made it."""
    return {
        "user_api_key_hash": key_hash,
        "user_api_key_alias": alias,
        "user_api_key_end_user_id": end_user,
        "user_api_key_team_id": team,
        "user_api_key_user_id": "internal-user-1",
    }


def mocked(usage):
    return ModelResponse(choices=[{"message": {"role": "assistant", "content": "4"}}], usage=usage)


def usage_of(response):
    return response.usage.model_dump(exclude_none=True)


def wait_until_logged(recorder, call_id, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while call_id not in recorder.seen:
        if time.monotonic() > deadline:
            raise SystemExit(f"LiteLLM never reported call {call_id} to the callbacks")
        time.sleep(0.02)


async def async_call(recorder, call_id, **params):
    response = await litellm.acompletion(messages=MESSAGES, litellm_call_id=call_id, **params)
    while call_id not in recorder.seen:  # the async success hooks run as tasks after the return
        await asyncio.sleep(0.02)
    return response


def main():
    handler = get_instance_fn("tokenmeter_litellm.proxy.handler")
    recorder = Recorder()
    litellm.callbacks = [handler, recorder]
    calls = {name: str(uuid.uuid4()) for name in ("plain", "cached_reasoning", "cache_write", "stream", "no_account")}
    usage = {}

    # 1. A plain string mock_response: LiteLLM's own mock usage (10 prompt, 20 completion tokens).
    r = litellm.completion(
        model="deepseek/deepseek-reasoner",
        messages=MESSAGES,
        mock_response="hello there",
        litellm_call_id=calls["plain"],
        metadata=virtual_key("hash-of-key-a", alias="key-prod.1", end_user="acct_litellm_a"),
    )
    usage["plain"] = usage_of(r)
    wait_until_logged(recorder, calls["plain"])

    # 2. Cached and reasoning tokens, the end user given as the SDK's `user=`, only a key hash.
    r = litellm.completion(
        model="deepseek/deepseek-reasoner",
        messages=MESSAGES,
        user="acct_litellm_a",
        mock_response=mocked(
            Usage(
                prompt_tokens=2006,
                completion_tokens=300,
                total_tokens=2306,
                prompt_tokens_details={"cached_tokens": 1920},
                completion_tokens_details={"reasoning_tokens": 128},
            )
        ),
        litellm_call_id=calls["cached_reasoning"],
        metadata=virtual_key("hash-of-key-b"),
    )
    usage["cached_reasoning"] = usage_of(r)
    wait_until_logged(recorder, calls["cached_reasoning"])

    # 3. Async (the async success hook), Anthropic prompt caching with cache writes, the account
    #    from the team (no end user).
    r = asyncio.run(
        async_call(
            recorder,
            calls["cache_write"],
            model="anthropic/claude-sonnet-4-20250514",
            mock_response=mocked(
                Usage(prompt_tokens=3000, completion_tokens=300, total_tokens=3300, cache_read_input_tokens=1000, cache_creation_input_tokens=500)
            ),
            metadata=virtual_key("hash-of-key-c", team="acct_litellm_team"),
        )
    )
    usage["cache_write"] = usage_of(r)

    # 4. Streaming: one report for the whole stream, with the usage LiteLLM counted.
    stream = litellm.completion(
        model="deepseek/deepseek-reasoner",
        messages=MESSAGES,
        mock_response="the answer is four",
        stream=True,
        stream_options={"include_usage": True},
        litellm_call_id=calls["stream"],
        metadata=virtual_key("hash-of-key-a", alias="key-prod.1", end_user="acct_litellm_a"),
    )
    chunks = list(stream)
    usage["stream"] = next(c.usage.model_dump(exclude_none=True) for c in reversed(chunks) if getattr(c, "usage", None))
    wait_until_logged(recorder, calls["stream"])

    # 5. A call no account applies to (no end user, no team, no default): still published, so
    #    that Tokenmeter dead-letters it visibly.
    litellm.completion(
        model="deepseek/deepseek-reasoner",
        messages=MESSAGES,
        mock_response="hello",
        litellm_call_id=calls["no_account"],
        metadata=virtual_key("hash-of-key-a"),
    )
    wait_until_logged(recorder, calls["no_account"])

    # LiteLLM reports call 2 a second time (a retried logging hook): the same event again.
    handler.log_success_event(*recorder.seen[calls["cached_reasoning"]])

    left = handler.close()
    publisher = handler.publisher
    json.dump({"calls": calls, "usage": usage, "delivered": publisher.delivered, "failed": publisher.failed, "left": left}, sys.stdout)


if __name__ == "__main__":
    main()
