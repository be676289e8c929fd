"""The sandbox: a local Zenoti that sends webhooks exactly as Zenoti does.

Modules:

- ``model``: the shared data (an :class:`~.model.Occurrence` is one business event that happened
  in the synthetic world; the webhook and clock contracts).
- ``world``: the synthetic organization, deterministic from a seed.
- ``activity``: business actions on the world, each producing occurrences shaped like Zenoti's
  payloads; ``scenario``: activity levels played on a time scale.
- ``automations``: webhook automations as configured in Zenoti, persisted in the sandbox's state.
- ``delivery``: the delivery engine with Zenoti's policy (timeout, retries, deactivation, email).
- ``mail``: the deactivation email, over SMTP or into an outbox folder.
- ``app``: the REST API and the web pages.
"""
