"""The configured tariff: the `tariff:` settings on top of what the price provider declares."""
from __future__ import annotations

from billing.tariff import Tariff
from servicekit.config import Config
from upstreams.price_providers import PROVIDERS


def tariff_for(config: Config) -> Tariff:
    """The provider fixes the market's rule, resolution and calendar (ComEd: hourly average of 5-minute
    prices, Central time); `tariff.supply_billing` may override the rule."""
    provider = PROVIDERS[config.price.provider]
    settings = config.tariff
    rule = provider.billing_rule if settings.supply_billing == "auto" else settings.supply_billing
    return Tariff(provider.zone, rule, provider.resolution, settings.delivery_cents_per_kwh / 100,
                  settings.delivery_periods, settings.monthly_fixed_dollars, settings.capacity_dollars_per_month,
                  settings.reference_supply_cents_per_kwh / 100 or None)
