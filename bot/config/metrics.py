"""``[metrics]``: the Prometheus endpoint (anonymous counters only)."""

from __future__ import annotations

from bot.config.base import Listen, Section, split_listen


class MetricsConfig(Section):
    """Prometheus endpoint with anonymous counters only."""

    enabled: bool = False
    listen: Listen = "127.0.0.1:9464"

    @property
    def host_port(self) -> tuple[str, int]:
        """Address for the metrics server to bind."""
        return split_listen(self.listen)
