"""For the LiteLLM proxy's config.yaml:

    litellm_settings:
      callbacks: ["tokenmeter_litellm.proxy.handler"]

The proxy imports this module and registers `handler`, configured from TOKENMETER_* environment
variables (README.md). Importing it without TOKENMETER_KAFKA_BROKERS fails, on purpose: a proxy
that cannot report usage should not start as if it could.
"""

from .logger import TokenmeterLogger

handler = TokenmeterLogger()
