"""Notifications: triggers, templates, services and subscriptions, as Argo CD's
notifications have them, delivered by flow tasks at least once and de-duplicated.

* :mod:`.triggers` - what can happen (``health-degraded``, ``task-failed``, …) and the
  :class:`~.triggers.Event` that says it happened, with the key that makes it happen once;
* :mod:`.templates` - sandboxed Jinja2 templates, with built-ins for every trigger;
* :mod:`.services` - email (SMTP), Slack (incoming webhook), generic webhook (HMAC);
* :mod:`.subscriptions` - who wants what: annotations and the operator's defaults;
* :mod:`.config` - the operator's ConfigMap and Secret;
* :mod:`.delivery` - the flow task that renders and sends one message;
* :mod:`.center` - turns an event into one delivery FlowRun per subscription.
"""
