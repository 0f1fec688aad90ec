"""The one configuration shared by every component.

`load(mapping, env, secrets)` is pure: YAML mapping + environment + secrets -> frozen `Config`.
Each setting is declared once, as a dataclass field carrying its type, default, environment
variable and help text; the same declarations drive validation, the environment overrides and
the configuration reference in docs/configuration.md (see `reference_rows`).

Secrets never come from the YAML file: only from a `.secrets` file (KEY=VALUE) or the
environment, and they are wrapped in `Secret` so no repr, log line or error message shows them.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from servicekit.identifiers import is_uuid, is_vin
from servicekit.settings_types import (
    Address, Bool, CentsPerKwh, Charger, ChargerList, Choice, ConfigError, DeliveryPeriods, Duration, Kind, Listen,
    NameMap,
    Number, OptionalNumber, PeakWindows, OptionalText, OptionalUrl, SiteName, Text, TimeZone, Url, UrlList, VinList,
    fail, show,
)
from billing.tariff import RULES, DeliveryPeriod

__all__ = ["Config", "ConfigError", "Secret", "load", "load_files", "read_secrets", "Charger", "Listen"]

SECRET_NAMES = ("TESSIE_ACCESS_TOKEN", "SMTP_PASSWORD", "CHAT_WEBHOOK_URL", "SMART_CHARGING_API_TOKEN")


class Secret:
    """A credential that refuses to be printed: repr/str show '***', `reveal()` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def setting(kind: Kind, default: Any, doc: str, env: str | None = None) -> Any:
    """Declare one setting: its type, default (validated like user input), env override and help."""
    return field(metadata={"kind": kind, "default": default, "env": env, "doc": doc})


@dataclass(frozen=True)
class GeneralSettings:
    log_level: str = setting(Choice(("debug", "info", "warning", "error")), "info",
                             "Log level of every component: debug, info, warning or error.", "LOG_LEVEL")
    timezone: str = setting(TimeZone(), "America/Chicago",
                            "Time zone for daily/monthly summaries, the times in notifications and ComEd's "
                            "Central-time date ranges.", "TZ")
    data_dir: str = setting(Text(), "var", "Where the local suite keeps its state (Prometheus data, the SQLite "
                            "file, logs): `make up` uses its subdirectory `demo` for the simulated demo and `live` "
                            "for real equipment, never one for both.", "CHARGING_DATA_DIR")
    site: str = setting(SiteName(), "home", "The name of the home when `sites` is empty: every series of its "
                        "exporters and session store carries it as the label `site` (with `sites`, each site's "
                        "own name does).", "SITE_NAME")


@dataclass(frozen=True)
class WallConnectorSettings:
    enabled: bool = setting(Bool(), True, "Run the local Wall Connector exporter.", "LOCAL_TWC_ENABLED")
    chargers: tuple[Charger, ...] = setting(
        ChargerList(), [], "Wall Connectors on the LAN: list of {name, address}; address is the LAN IP "
        "(port 80) or host:port. Only the power-sharing leader is reachable.", "TWC_CHARGERS")
    vitals_interval: float = setting(Duration(), 5, "How often /api/1/vitals is read.", "TWC_POLL_VITALS_INTERVAL")
    lifetime_interval: float = setting(Duration(), 60, "How often /api/1/lifetime is read.",
                                       "TWC_POLL_LIFETIME_INTERVAL")
    version_interval: float = setting(Duration(), 300, "How often /api/1/version is read.",
                                      "TWC_POLL_VERSION_INTERVAL")
    wifi_interval: float = setting(Duration(), 60, "How often /api/1/wifi_status is read.", "TWC_POLL_WIFI_INTERVAL")
    timeout: float = setting(Duration(), 3, "Per-request timeout towards a charger.")
    stale_after: float = setting(Duration(), 60, "Values older than this are withdrawn from /metrics.")
    listen: Listen = setting(Address(), "127.0.0.1:9881", "Where twc-exporter serves /metrics.")


@dataclass(frozen=True)
class TessieSettings:
    base_url: str = setting(Url(), "https://api.tessie.com", "Tessie API (also serves the Fleet API under /api/1).",
                            "TESSIE_BASE_URL")
    timeout: float = setting(Duration(), 15, "Per-request timeout towards Tessie.")


@dataclass(frozen=True)
class EnergySiteSettings:
    enabled: bool = setting(Bool(), True, "Run the Fleet energy-site exporter (needs TESSIE_ACCESS_TOKEN).",
                            "FLEET_API_ENABLED")
    site_id: str | None = setting(OptionalText(), None, "Energy site id; empty = discover it from /api/1/products.",
                                  "ENERGY_SITE_ID")
    unit_names: dict[str, str] = setting(
        NameMap("PGT12345678901:garage"), {}, "Names of Wall Connector units (leader and followers) by serial "
        "or DIN; unnamed units are called by their serial. Use the names of wall_connectors.chargers, so the "
        "local and the Fleet view agree, and set them before the first run: sessions keep the name they were "
        "recorded with.", "WALL_CONNECTOR_NAMES")
    leaders: str | None = setting(OptionalText(), None, "Serials or DINs of the power-sharing leaders, "
                                  "comma-separated; the other units are their followers. Empty: one unit is its own "
                                  "leader, else the units of wall_connectors.chargers (only a leader is on the home "
                                  "network) lead and the others follow, else the role is unknown.",
                                  "WALL_CONNECTOR_LEADERS")
    live_status_interval: float = setting(Duration(), 30, "How often live_status is read (Tessie clients poll 30 s).",
                                          "FLEET_LIVE_STATUS_INTERVAL")
    site_info_interval: float = setting(Duration(), 3600, "How often site_info (unit facts) is read.")
    charge_history_interval: float = setting(Duration(), 900, "How often telemetry_history (kind=charge) is read.",
                                             "FLEET_CHARGE_HISTORY_INTERVAL")
    stale_after: float = setting(Duration(), 180, "Values older than this are withdrawn from /metrics.")
    listen: Listen = setting(Address(), "127.0.0.1:9882", "Where fleet-exporter serves /metrics.")


@dataclass(frozen=True)
class VehicleSettings:
    enabled: bool = setting(Bool(), True, "Run the vehicle exporter (needs TESSIE_ACCESS_TOKEN).", "TESSIE_ENABLED")
    poll_interval: float = setting(Duration(), 60, "How often cached vehicle state is read; never wakes the car.",
                                   "TESSIE_POLL_INTERVAL")
    names: dict[str, str] = setting(
        NameMap("5YJ3E1EA7KF000001:Blue", is_vin, "17-character VIN"), {},
        "Vehicle names by VIN, in every component; vehicles not listed are named by their Tessie display name, "
        "else by VIN. Set them before the first run: sessions keep the name they were recorded with.",
        "VEHICLE_NAMES")
    target_ids: dict[str, str] = setting(
        NameMap("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee:Blue", is_uuid, "a UUID"), {},
        "Fleet charge-history target_id (not a VIN) to vehicle name; learned from matches, seeded here.",
        "TARGET_ID_VEHICLES")
    stale_after: float = setting(Duration(), 300, "Values older than this are withdrawn from /metrics.")
    listen: Listen = setting(Address(), "127.0.0.1:9883", "Where vehicle-exporter serves /metrics.")
    vins: tuple[str, ...] = setting(
        VinList(), [], "Only these cars (VINs), in every component; empty = every car of the Tessie account. "
        "With several sites, list each site's cars under it, so a car is watched at one home only.",
        "VEHICLE_VINS")
    home_latitude: float | None = setting(
        OptionalNumber(minimum=-90, maximum=90, unit="degrees"), None,
        "Latitude of home in decimal degrees (WGS84), set together with home_longitude: the vehicle exporter then "
        "exports each car's distance from home and whether it is at home, never its coordinates. Empty = no "
        "location metrics.", "HOME_LATITUDE")
    home_longitude: float | None = setting(
        OptionalNumber(minimum=-180, maximum=180, unit="degrees"), None,
        "Longitude of home in decimal degrees (WGS84, west negative), set together with home_latitude.",
        "HOME_LONGITUDE")
    home_radius_m: float = setting(Number(minimum=0, exclusive_minimum=True, unit="metres"), 150,
                                   "A car within this many metres of home counts as at home.", "HOME_RADIUS_M")

    def __post_init__(self) -> None:
        """Home is one point: a latitude without a longitude (or the reverse) is a mistake, not 'no home'.
        The message names the coordinate given but never its value."""
        if (self.home_latitude is None) != (self.home_longitude is None):
            given, missing = (("home_latitude", "home_longitude") if self.home_longitude is None
                              else ("home_longitude", "home_latitude"))
            env = "HOME_LONGITUDE" if missing == "home_longitude" else "HOME_LATITUDE"
            raise ConfigError(f"vehicles.{missing}: missing while vehicles.{given} is set, got {given} alone; set "
                              f"vehicles.{missing} (or {env}) too, or remove {given} for no location metrics")

    def __repr__(self) -> str:
        """As the generated repr, with home's coordinates hidden: where the user lives stays out of logs."""
        def show(name: str, value: Any) -> str:
            return "***" if name in ("home_latitude", "home_longitude") and value is not None else repr(value)
        fields = ", ".join(f"{f.name}={show(f.name, getattr(self, f.name))}" for f in dataclasses.fields(self))
        return f"VehicleSettings({fields})"


@dataclass(frozen=True)
class PriceSettings:
    provider: str = setting(Choice(("comed",)), "comed", "Price provider.", "PRICE_PROVIDER")
    base_url: str = setting(Url(), "https://hourlypricing.comed.com", "Provider API base URL.", "COMED_BASE_URL")
    poll_interval: float = setting(Duration(), 300, "How often the current price is read.", "COMED_POLL_INTERVAL")
    timeout: float = setting(Duration(), 15, "Per-request timeout towards the provider.")
    stale_after: float = setting(Duration(), 900, "Values older than this are withdrawn from /metrics.")
    listen: Listen = setting(Address(), "127.0.0.1:9884", "Where price-exporter serves /metrics.")


@dataclass(frozen=True)
class TariffSettings:
    supply_billing: str = setting(Choice(("auto", *RULES)), "auto",
                                  "How supply is billed: hourly_average (each local clock hour at the mean of its "
                                  "5-minute prices, ComEd Hourly Pricing), interval (each price interval at its own "
                                  "price), auto = the provider's own rule.", "SUPPLY_BILLING")
    delivery_cents_per_kwh: float = setting(CentsPerKwh(env_dollars=True), 7.5,
                                            "Delivery charges in cents per kWh: the flat rate, and the rate of any "
                                            "time no delivery period covers. Its environment variable is in dollars "
                                            "per kWh (0.075), as the earlier InfluxDB-based setup had it.",
                                            "COMED_DELIVERY_PER_KWH")
    delivery_periods: tuple[DeliveryPeriod, ...] = setting(
        DeliveryPeriods(), [], "Time-of-day delivery: a list of {name, months, days, start, end, cents_per_kwh}; the "
        "first period covering a moment (local time) sets its rate. Empty = flat delivery.")
    monthly_fixed_dollars: float = setting(Number(minimum=0, maximum=500, unit="$"), 19.56,
                                           "Fixed monthly charges in dollars (customer + metering), in month totals.",
                                           "COMED_MONTHLY_FIXED")
    capacity_dollars_per_month: float = setting(Number(minimum=0, maximum=1000, unit="$"), 0,
                                                "Capacity charge in dollars per month, on hourly-pricing bills "
                                                "(capacity PLC kW x scaling x pool requirement x $/kW-month); in "
                                                "month totals.", "COMED_CAPACITY_PER_MONTH")
    reference_supply_cents_per_kwh: float = setting(CentsPerKwh(), 10.028,
                                                    "The fixed-price supply rate savings are measured against, in "
                                                    "cents per kWh (ComEd's Price to Compare, summer 2025); 0 = no "
                                                    "reference.", "COMED_REFERENCE_SUPPLY_CENTS_PER_KWH")


@dataclass(frozen=True)
class SessionSettings:
    min_energy_kwh: float = setting(Number(minimum=0, unit="kWh"), 0.1,
                                    "Sessions with less energy are discarded (and counted).",
                                    "FLEET_SESSION_MIN_ENERGY_KWH")
    min_duration: float = setting(Duration(allow_zero=True), 60, "Sessions shorter than this are discarded.",
                                  "FLEET_SESSION_MIN_DURATION_S")
    power_threshold_w: float = setting(Number(minimum=0, unit="W"), 100,
                                       "A session starts when a unit's power rises above this.")
    grace_period: float = setting(Duration(), 600,
                                  "A session ends when power stays below the threshold this long.")
    source: str = setting(Choice(("auto", "fleet", "local")), "auto", "Power series sessions are derived from: "
                          "fleet (every unit via the Fleet API), local (Wall Connector API), auto = fleet when present.")
    evaluation_interval: float = setting(Duration(), 15, "How often new samples are read from Prometheus.")
    settle: float = setting(Duration(allow_zero=True), 0, "Samples younger than this are left for the next "
                            "evaluation (each evaluation also re-reads the last minute, and holds a unit's power "
                            "back until its vehicle-link series has caught up, so none is skipped).")
    catch_up: float = setting(Duration(), 7 * 86400, "On first start, how much stored history is turned into sessions.")
    history_days: float = setting(Number(minimum=1, maximum=365, unit="days"), 30,
                                  "On first start, how far back charge history is imported: the site's (Fleet "
                                  "telemetry_history) and each car's own (Tessie); later imports re-read the last "
                                  "7 days, as charge history arrives hours to days late.", "CHARGE_HISTORY_DAYS")
    vehicle_history_interval: float = setting(Duration(), 900, "How often each car's own charge history (Tessie "
                                              "/{vin}/charges: home and away charging) is read; never wakes a car.",
                                              "VEHICLE_CHARGES_INTERVAL")
    catch_up_chunk: float = setting(Duration(), 6 * 3600, "Catching up reads Prometheus in windows of this size, "
                                    "one transaction each.")
    database: str = setting(OptionalText(), None, "SQLite file of the session store; empty = "
                            "`session_store.sqlite3` in general.data_dir (with `make up`: in the mode's "
                            "subdirectory).", "SESSION_STORE_DB")
    listen: Listen = setting(Address(), "127.0.0.1:9885", "Where session-store serves its API and /metrics.")


@dataclass(frozen=True)
class SmartChargingSettings:
    enabled: bool = setting(Bool(), True, "Evaluate smart charging (dry run unless control_enabled).",
                            "SMART_CHARGING_ENABLED")
    control_enabled: bool = setting(Bool(), False, "Send real stop/start commands (live mode; needs the token).",
                                    "SMART_CHARGING_CONTROL_ENABLED")
    signal: str = setting(Choice(("billed", "five_minute")), "billed",
                          "The price decided on: billed = the projected price of the billing hour in progress "
                          "against percentiles of billed hourly prices (energy anywhere in an hour pays its mean); "
                          "five_minute = the latest 5-minute price against 5-minute percentiles (the old rule, "
                          "kept for comparison).", "SMART_CHARGING_SIGNAL")
    lookback_days: float = setting(Number(minimum=1, maximum=365, unit="days"), 30,
                                   "Price history the percentiles are taken over.", "SMART_CHARGING_LOOKBACK_DAYS")
    stop_percentile: float = setting(Number(minimum=0, maximum=100, exclusive_minimum=True), 90,
                                     "Stop charging when the signal price is above this percentile.",
                                     "SMART_CHARGING_STOP_PERCENTILE")
    resume_percentile: float = setting(Number(minimum=0, maximum=100, exclusive_minimum=True), 75,
                                       "Resume when the signal price falls below this percentile.",
                                       "SMART_CHARGING_RESUME_PERCENTILE")
    min_interval: float = setting(Duration(), 600, "Never two commands for one vehicle within this.",
                                  "SMART_CHARGING_MIN_INTERVAL")
    evaluation_interval: float = setting(Duration(), 60, "How often smart charging evaluates.",
                                         "SMART_CHARGING_EVALUATION_INTERVAL")
    max_price_age: float = setting(Duration(), 900, "A price older than this is stale: never stop, resume.")
    min_history_days: float = setting(Number(minimum=0, unit="days"), 7,
                                      "Too little history below this: never stop, resume.")


@dataclass(frozen=True)
class PlannerSettings:
    enabled: bool = setting(Bool(), True, "Plan charging by departure time for the cars that have a departure set "
                            "(through the API or the /plans page); executed on smart charging's machinery, dry run "
                            "unless smart_charging.control_enabled.", "PLANNER_ENABLED")
    battery_kwh: float = setting(Number(minimum=10, maximum=250, unit="kWh"), 75,
                                 "Usable battery capacity of a car whose plan gives none.", "PLANNER_BATTERY_KWH")
    charger_power_kw: float = setting(Number(minimum=1, maximum=22, unit="kW"), 11.5,
                                      "Power one Wall Connector gives one car (48 A x 240 V).",
                                      "PLANNER_CHARGER_POWER_KW")
    circuit_power_kw: float = setting(Number(minimum=0, maximum=200, unit="kW"), 11.5,
                                      "Power the power-sharing group (leader and followers on one circuit) gives all "
                                      "its cars together; 0 = every unit has its own circuit.",
                                      "PLANNER_CIRCUIT_POWER_KW")
    efficiency: float = setting(Number(minimum=0.5, maximum=1.0), 0.9,
                                "Battery energy per wall energy until a car's own is learned from its sessions.")
    margin: float = setting(Duration(), 1800, "Plans finish this long before departure (taper, ramp-up, stale "
                            "readings).", "PLANNER_MARGIN")
    soc_fresh: float = setting(Duration(), 900, "A car's reading younger than this is planned from as is; an older one "
                               "is advanced by the wall energy since (x efficiency / battery).")
    peak_risk_windows: tuple[DeliveryPeriod, ...] = setting(
        PeakWindows(), [{"name": "summer_weekday_afternoons", "months": [6, 7, 8, 9],
                         "days": ["mon", "tue", "wed", "thu", "fri"], "start": "13:00", "end": "19:00"}],
        "Hours that may set next year's capacity charge (ComEd: summer weekday afternoons); the planner uses them only "
        "when the deadline needs them. A list of {name, months, days, start, end}; [] = none.")
    horizon_hours: float = setting(Number(minimum=1, maximum=168, unit="h"), 48,
                                   "How far ahead a departure may be planned.")


@dataclass(frozen=True)
class MeterSettings:
    enabled: bool = setting(Bool(), True, "Read the home's smart-meter data and bills from the utility's portal "
                            "(Opower) once `charging-meter setup` has stored a login; optional: nothing else waits "
                            "for it.", "METER_ENABLED")
    utility: str = setting(Choice(("comed",)), "comed", "The utility (the `opower` library's name for it).",
                           "METER_UTILITY")
    credential_file: str = setting(OptionalText(), None, "Where `charging-meter setup` keeps the login it refreshes (mode "
                                   "0600, never in this file); empty = meter_login.json in general.data_dir.",
                                   "METER_CREDENTIAL_FILE")
    base_url: str | None = setting(OptionalUrl(), None, "Send the portal's requests here instead of the utility's "
                                   "hosts: the simulator in demo mode and tests; empty = the real portal.",
                                   "METER_BASE_URL")
    poll_interval: float = setting(Duration(), 6 * 3600, "How often new reads and bills are pulled (the portal "
                                   "publishes a day or two late).", "METER_POLL_INTERVAL")
    history_days: float = setting(Number(minimum=1, maximum=1100, unit="d"), 40,
                                  "How far back the first pull reads (the portal keeps about 3 years).")
    recheck_days: float = setting(Number(minimum=1, maximum=60, unit="d"), 7,
                                  "Every pull reads this many days again, so the portal's corrections replace what "
                                  "was read before.")
    prometheus_data_dir: str = setting(OptionalText(), None, "Prometheus's TSDB directory: reads are written there as blocks "
                                       "at their real time (promtool); empty = prometheus/ in general.data_dir, as "
                                       "`make up` runs it.", "METER_PROMETHEUS_DATA_DIR")
    discrepancy_tolerance: float = setting(Number(minimum=0, maximum=0.5), 0.02,
                                           "Computed EV cost this far from the utility's (a ratio) is reported with a "
                                           "tuning hint.")
    timeout: float = setting(Duration(), 60, "Per-pull timeout towards the portal.")
    listen: Listen = setting(Address(), "127.0.0.1:9886", "Where charging-meter serves /metrics.")


ENGINES = ("prometheus", "victoriametrics")


@dataclass(frozen=True)
class PrometheusSettings:
    url: str = setting(Url(), "http://127.0.0.1:9090", "The Prometheus query API the session store queries: "
                       "Prometheus, VictoriaMetrics, vmselect, Thanos Query or Mimir (`make up` sets it to what it "
                       "runs).", "PROMETHEUS_URL")
    engine: str = setting(Choice(ENGINES), "prometheus", "What `make up` runs to store and query the metrics: "
                          "prometheus, or victoriametrics (vmagent scrapes, VictoriaMetrics stores and answers the "
                          "queries, vmalert evaluates rules/ and sends alerts to Alertmanager).", "METRICS_ENGINE")
    import_url: str | None = setting(OptionalUrl(), None, "A VictoriaMetrics import API (single node: its URL; "
                                     "cluster: vminsert's http://host:8480/insert/0/prometheus): the price backfill and "
                                     "charging-meter write history there instead of into a Prometheus TSDB directory; "
                                     "empty = Prometheus's directory (`make up` on VictoriaMetrics sets it).",
                                     "METRICS_IMPORT_URL")
    listen: Listen = setting(Address(), "127.0.0.1:9090", "Where `make up` runs Prometheus.")
    scrape_interval: float = setting(Duration(), 15, "Scrape interval of the local suite's Prometheus.")
    retention: float = setting(Duration(), 40 * 86400,
                               "TSDB retention; must cover the smart-charging lookback plus margin.")


@dataclass(frozen=True)
class VictoriaMetricsSettings:
    listen: Listen = setting(Address(), "127.0.0.1:8428", "Where `make up` runs VictoriaMetrics (prometheus.engine: "
                             "victoriametrics); its retention is prometheus.retention.")
    vmagent_listen: Listen = setting(Address(), "127.0.0.1:8429", "Where `make up` runs vmagent, which scrapes the "
                                     "suite's jobs every prometheus.scrape_interval.")
    vmalert_listen: Listen = setting(Address(), "127.0.0.1:8880", "Where `make up` runs vmalert, which evaluates "
                                     "rules/ every prometheus.scrape_interval.")


@dataclass(frozen=True)
class AlertmanagerSettings:
    listen: Listen = setting(Address(), "127.0.0.1:9093", "Where `make up` runs Alertmanager.")
    group_wait: float = setting(Duration(), 30, "How long Alertmanager gathers alerts of a new group before the "
                                "first notification (critical alerts wait at most 10 s).")
    webhook_urls: tuple[str, ...] = setting(UrlList(), [], "Webhook receivers (Alertmanager's JSON payload), "
                                            "e.g. a chat bridge; empty = keep alerts in Alertmanager only.",
                                            "ALERTMANAGER_WEBHOOK_URLS")
    email_to: str | None = setting(OptionalText(), None, "Send notifications to this address (needs smtp_*).",
                                   "ALERT_EMAIL_TO")
    smtp_smarthost: str | None = setting(OptionalText(), None, "SMTP server host:port for e-mail notifications.",
                                         "SMTP_SMARTHOST")
    smtp_from: str | None = setting(OptionalText(), None, "Sender address of e-mail notifications.", "SMTP_FROM")
    smtp_username: str | None = setting(OptionalText(), None, "SMTP user; the password is the SMTP_PASSWORD secret.",
                                        "SMTP_USERNAME")
    runbook_base_url: str | None = setting(
        OptionalUrl(), None, "Where the repository is published, e.g. https://github.com/you/twc-charging-suite/blob/main/ "
        "(or its README.md): notifications resolve the alerts' runbook links (docs/alerts.md#alertname) against it, "
        "so they open from a phone; empty = the links stay relative.", "ALERT_RUNBOOK_BASE_URL")


@dataclass(frozen=True)
class SimulatorSettings:
    listen: Listen = setting(Address(), "127.0.0.1:9880", "Where charging-sim serves Tessie, Fleet and ComEd.")
    charger_port_base: int = setting(Number(minimum=0, maximum=65535, integer=True), 9890,
                                     "Simulated Wall Connector i listens on this port + i (0 = any free port).")
    scenario: str | None = setting(OptionalText(), None, "Scenario file; empty = the bundled demo.",
                                   "SIMULATOR_SCENARIO")
    speed: float = setting(Number(minimum=0, exclusive_minimum=True), 1.0, "Simulated seconds per real second.",
                           "SIMULATOR_SPEED")


@dataclass(frozen=True)
class Secrets:
    tessie_access_token: Secret | None = None
    smtp_password: Secret | None = None
    chat_webhook_url: Secret | None = None   # Slack-compatible incoming webhook: its URL is the credential
    smart_charging_api_token: Secret | None = None   # required by the smart-charging override endpoint

    def all(self) -> list[Secret]:
        """Every secret that is set, for log redaction."""
        return [s for s in (self.tessie_access_token, self.smtp_password, self.chat_webhook_url,
                            self.smart_charging_api_token) if s is not None]


@dataclass(frozen=True)
class Config:
    general: GeneralSettings
    wall_connectors: WallConnectorSettings
    tessie: TessieSettings
    energy_site: EnergySiteSettings
    vehicles: VehicleSettings
    price: PriceSettings
    tariff: TariffSettings
    sessions: SessionSettings
    smart_charging: SmartChargingSettings
    planner: PlannerSettings
    meter: MeterSettings
    prometheus: PrometheusSettings
    victoriametrics: VictoriaMetricsSettings
    alertmanager: AlertmanagerSettings
    simulator: SimulatorSettings
    secrets: Secrets = field(default_factory=Secrets)
    site: str = "home"                  # the site this configuration was loaded for (its `site` label)
    sites: tuple[str, ...] = ("home",)  # every site of the suite, in the order of `sites:` (the first is the main one)

    @property
    def site_index(self) -> int:
        return self.sites.index(self.site)

    @property
    def site_matcher(self) -> str | None:
        """The PromQL matcher that selects this site's series, None with one site (every series is its own).
        The first site also owns series without the label: history recorded before the suite had sites."""
        if len(self.sites) == 1:
            return None
        return f'site=~"{self.site}|"' if self.site_index == 0 else f'site="{self.site}"'

    @property
    def on_victoria_metrics(self) -> bool:
        """`make up` runs VictoriaMetrics (with vmagent and vmalert) instead of Prometheus."""
        return self.prometheus.engine == "victoriametrics"

    @property
    def query_listen(self) -> Listen:
        """Where the metrics query API of the suite `make up` runs listens: VictoriaMetrics's or Prometheus's."""
        return self.victoriametrics.listen if self.on_victoria_metrics else self.prometheus.listen

    def require_tessie_token(self, needed_by: str) -> Secret:
        """Components that talk to Tessie call this at start-up; no token stops them with both fixes.
        `needed_by` names the component and, in parentheses, the setting that turns it on."""
        token = self.secrets.tessie_access_token
        if token is None:
            switch = needed_by.partition("(")[2].split()[0].rstrip(")") if "(" in needed_by else ""
            instead = f", or set {switch}: false" if switch else ""
            raise ConfigError(
                f"TESSIE_ACCESS_TOKEN: missing, but {needed_by} needs it, got no token; put "
                f"TESSIE_ACCESS_TOKEN=<token> in .secrets or the environment{instead}")
        return token


SECTIONS: dict[str, type] = {f.name: f.type for f in dataclasses.fields(Config)
                             if f.name not in ("secrets", "site", "sites")}
# dataclass field types are strings under `from __future__ import annotations`; resolve them here.
SECTIONS = {name: globals()[cls] if isinstance(cls, str) else cls for name, cls in SECTIONS.items()}


MOVED = {"price.delivery_per_kwh": ("tariff.delivery_cents_per_kwh", "in cents: 0.075 dollars is 7.5"),
         "price.monthly_fixed": ("tariff.monthly_fixed_dollars", "in dollars, as before")}


def _unknown(key: str, name: str, known: list[str]) -> ConfigError:
    if key in MOVED:
        new, unit = MOVED[key]
        return ConfigError(f"{key}: moved to {new} (the tariff now bills every cost), got key {name!r}; move the "
                           f"line under 'tariff:' as {new.split('.')[1]} ({unit})")
    if name.lower() in {"access_token", "token", "tessie_access_token", "password", "api_key", "smtp_password"}:
        secret = "SMTP_PASSWORD" if "password" in name.lower() else "TESSIE_ACCESS_TOKEN"
        return ConfigError(f"{key}: secrets are not read from the YAML file, got key {name!r}; remove it and put "
                           f"{secret}=<value> in .secrets or the environment")
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(known)
    return ConfigError(f"{key}: unknown key, got {name!r}; {hint}")


def _section(name: str, cls: type, raw: Any, env: Mapping[str, str]) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise fail(name, "must be a mapping of settings", raw, f"write '{name}:' followed by indented key: value lines")
    known = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in known:
            raise _unknown(f"{name}.{key}", str(key), known)
    values = {}
    for f in dataclasses.fields(cls):
        kind: Kind = f.metadata["kind"]
        env_name = f.metadata["env"]
        if env_name and _env_value(env_name, env) is not None:
            values[f.name] = kind.parse_env(env_name, _env_value(env_name, env))
        elif f.name in raw:
            values[f.name] = kind.parse(f"{name}.{f.name}", raw[f.name])
        else:
            values[f.name] = kind.parse(f"{name}.{f.name}", f.metadata["default"])
    return cls(**values)


def _env_value(name: str, env: Mapping[str, str]) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    if name == "TZ" and value.startswith((":", "/")):
        return None  # a libc zoneinfo path, not one of our settings
    return value


# What a site may set for itself: the sections of one home (its equipment, its Tessie account, cars, price
# zone, bill, sessions and charging policy, and the demo's simulator). The rest (general, meter, prometheus,
# victoriametrics, alertmanager) is the suite's, shared by every site.
SITE_SECTIONS = ("wall_connectors", "tessie", "energy_site", "vehicles", "price", "tariff", "sessions",
                 "smart_charging", "planner", "simulator")
SITE_PORT_STEP = 100   # site i listens, where its section does not say, at the shared default port + 100 x i
SITE_ENV = "CHARGING_SITE"
# Environment variables naming one home's equipment: with several sites they cannot apply to all of them.
SITE_IDENTITY_ENV = ("TWC_CHARGERS", "ENERGY_SITE_ID", "WALL_CONNECTOR_NAMES", "WALL_CONNECTOR_LEADERS",
                     "VEHICLE_NAMES", "VEHICLE_VINS", "TARGET_ID_VEHICLES", "HOME_LATITUDE", "HOME_LONGITUDE",
                     "SESSION_STORE_DB")


def load(mapping: Mapping[str, Any] | None, env: Mapping[str, str], secrets: Mapping[str, str],
         site: str | None = None) -> Config:
    """Validate a YAML mapping with environment overrides and secrets into a `Config`: for `site` (default
    $CHARGING_SITE, else the first site), its section overrides laid over the shared sections."""
    mapping = mapping or {}
    if not isinstance(mapping, dict):
        raise fail("(top level)", "must be a mapping of sections", mapping, "start the file with section names like 'price:'")
    for key in mapping:
        if key not in SECTIONS and key != "sites":
            raise _unknown(str(key), str(key), [*SECTIONS, "sites"])
    general = _section("general", GeneralSettings, mapping.get("general"), env)
    overlays = _sites(mapping.get("sites"), mapping)
    names = tuple(overlays) or (general.site,)
    chosen = site or _env_value(SITE_ENV, env)
    if chosen is None:
        chosen = names[0]
        if len(names) > 1:
            for name in SITE_IDENTITY_ENV:
                if _env_value(name, env) is not None:
                    raise ConfigError(f"{name}: set in the environment, but the configuration has {len(names)} sites "
                                      f"and it would apply to all of them, got {name} alone; set it under the site "
                                      f"it belongs to in sites: (or unset it)")
    elif chosen not in names:
        raise ConfigError(f"{SITE_ENV}: no such site, got {chosen!r}; use one of {', '.join(names)}"
                          + ("" if overlays else " (or add it under sites:)"))
    index = names.index(chosen)
    overlay = overlays.get(chosen, {})
    sections = {"general": general}
    for name, cls in SECTIONS.items():
        if name == "general":
            continue
        raw = mapping.get(name)
        if name in overlay:
            raw = {**(raw if isinstance(raw, dict) else {}), **overlay[name]}
        section = _section(name, cls, raw, env)
        sections[name] = _on_site_ports(section, index, overlay.get(name, {})) if name in SITE_SECTIONS else section
    shared_db = isinstance(mapping.get("sessions"), dict) and mapping["sessions"].get("database")
    if index and shared_db and "database" not in overlay.get("sessions", {}) and not _env_value("SESSION_STORE_DB", env):
        raise ConfigError(f"sessions.database: one file cannot hold several sites' sessions, got {shared_db!r} for "
                          f"site {chosen!r} too; set sessions.database under each site after the first (or remove it)")
    sections["sessions"] = _with_database(sections["sessions"], general, None if index == 0 else chosen)
    sections["meter"] = _with_meter_paths(sections["meter"], general)
    _check_secrets(secrets, names)
    found = {name.lower(): _secret(name, env, secrets) for name in SECRET_NAMES}
    found["tessie_access_token"] = _secret(site_token(chosen), env, secrets) or found["tessie_access_token"]
    config = Config(**sections, secrets=Secrets(**found),
                    site=chosen, sites=names)
    _check(config)
    return config


def _sites(raw: Any, mapping: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`sites:` as name -> {section: overrides}, checked: unique names, only a home's sections."""
    if raw is None or raw == []:
        return {}
    if not isinstance(raw, list):
        raise fail("sites", "must be a list of sites", raw, "write entries like '- name: cabin' with a home's sections")
    sites: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(raw):
        where = f"sites[{index}]"
        if not isinstance(item, dict) or "name" not in item:
            raise fail(f"{where}.name", "is missing", item, "start each site with '- name: <site>'")
        name = SiteName().parse(f"{where}.name", item["name"])
        if name in sites:
            raise fail(f"{where}.name", "is a duplicate site name", name, "give every site its own name")
        overlay = {}
        for key, value in item.items():
            if key == "name":
                continue
            if key not in SITE_SECTIONS:
                shared = key in SECTIONS
                raise ConfigError(f"{where}.{key}: " + (
                    f"is shared by every site, got it under site {name!r}; move it to the top-level '{key}:'"
                    if shared else f"unknown key, got {key!r}; a site takes name and {', '.join(SITE_SECTIONS)}"))
            if value is not None and not isinstance(value, dict):
                raise fail(f"{where}.{key}", "must be a mapping of settings", value,
                           f"write '{key}:' followed by indented key: value lines")
            overlay[key] = dict(value or {})
        sites[name] = overlay
    if "general" in mapping and isinstance(mapping["general"], dict) and "site" in mapping["general"]:
        raise ConfigError(f"general.site: not used with sites:, got {mapping['general']['site']!r}; remove it (each "
                          "site's name is its label)")
    return sites


def _on_site_ports(section: Any, index: int, overlay: Mapping[str, Any]) -> Any:
    """Site i's addresses, where its overrides do not give them: the shared ports + SITE_PORT_STEP x i."""
    if index == 0:
        return section
    step = SITE_PORT_STEP * index
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if f.name in overlay:
            continue
        if isinstance(value, Listen) and value.port:
            changes[f.name] = Listen(value.host, value.port + step)
        elif f.name == "charger_port_base" and value:
            changes[f.name] = value + step
    return dataclasses.replace(section, **changes) if changes else section


def _with_database(sessions: SessionSettings, general: GeneralSettings, site: str | None = None) -> SessionSettings:
    """sessions.database left empty lives in general.data_dir, so moving the data directory (or `make up`
    choosing the demo's or the live one) moves the SQLite file too; a site after the first keeps its own in
    sites/<name>/ there (the first keeps the single home's, so adding sites loses nothing)."""
    if sessions.database:
        return sessions
    base = Path(general.data_dir) if site is None else Path(general.data_dir) / "sites" / site
    return dataclasses.replace(sessions, database=str(base / "session_store.sqlite3"))


def _with_meter_paths(meter: "MeterSettings", general: GeneralSettings) -> "MeterSettings":
    """The meter's login and the TSDB it writes to live in general.data_dir unless set."""
    base = Path(general.data_dir)
    return dataclasses.replace(meter, credential_file=meter.credential_file or str(base / "meter_login.json"),
                               prometheus_data_dir=meter.prometheus_data_dir or str(base / "prometheus"))


def _secret(name: str, env: Mapping[str, str], secrets: Mapping[str, str]) -> Secret | None:
    value = (env.get(name) or secrets.get(name) or "").strip()
    return Secret(value) if value else None


def site_token(site: str) -> str:
    """The secret holding one site's own Tessie token (another account than the shared one)."""
    return f"TESSIE_ACCESS_TOKEN_{site.upper().replace('-', '_')}"


def _check_secrets(secrets: Mapping[str, str], sites: Sequence[str] = ()) -> None:
    """A typo of a secret's name (TESSIE_TOKEN, tessie_access_token) or an empty value would leave the
    suite quietly without it. Keys nothing like a secret's name belong to other tools sharing the file."""
    tokens = {site_token(site) for site in sites if len(sites) > 1}
    for key, value in secrets.items():
        if key.startswith("TESSIE_ACCESS_TOKEN_") and key not in tokens:
            raise ConfigError(f"secrets file: {key} names no site, got {key[:60]!r}; a site's own token is "
                              + (", ".join(sorted(tokens)) if tokens else "only read with several sites (sites:)"))
        if key not in SECRET_NAMES and key not in tokens:
            close = difflib.get_close_matches(key.upper(), SECRET_NAMES, n=1, cutoff=0.6)
            if close:
                raise ConfigError(f"secrets file: unknown key, got {key[:60]!r}; did you mean {close[0]}? "
                                  "(settings go in config.yaml or the environment)")
            continue
        if not value.strip():
            raise ConfigError(f"secrets file: {key} is empty, got '{key}='; put the value after the = or remove "
                              "the line")


def _check(config: Config) -> None:
    smart = config.smart_charging
    if smart.stop_percentile <= smart.resume_percentile:
        raise ConfigError(
            f"smart_charging.stop_percentile: must be above resume_percentile ({smart.resume_percentile:g}) "
            f"for hysteresis, got {smart.stop_percentile:g}; raise stop_percentile or lower resume_percentile")
    if smart.enabled and smart.control_enabled:
        config.require_tessie_token("live smart charging (smart_charging.control_enabled)")
    if config.prometheus.retention < (smart.lookback_days + 2) * 86400:
        raise ConfigError(f"prometheus.retention: must cover smart_charging.lookback_days ({smart.lookback_days:g} d) "
                          f"plus margin, got {config.prometheus.retention / 86400:g}d; set it to "
                          f"{smart.lookback_days + 10:g}d or more")
    mail = config.alertmanager
    if mail.email_to and not (mail.smtp_smarthost and mail.smtp_from):
        raise ConfigError(f"alertmanager.email_to: needs smtp_smarthost and smtp_from, got {show(mail.email_to)} alone; "
                          "set alertmanager.smtp_smarthost (host:port) and alertmanager.smtp_from")


def read_secrets(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a KEY=VALUE secrets file; blank lines, '#' comments, 'export ' and quotes allowed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"secrets file: cannot read it, got {str(path)!r} ({error.strerror}); "
                          "fix the path or permissions, or leave it out") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"secrets file line {number}: expected KEY=VALUE, got a line without a valid KEY=; "
                              f"fix line {number} of {path}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def read_yaml(path: str | os.PathLike[str]) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"config file: cannot read it, got {str(path)!r} ({error.strerror}); "
                          "pass --config with a readable YAML file (see config.example.yaml)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"config file: invalid YAML at {where} ({problem}), got {str(path)!r}; "
                          "fix the indentation or quoting there") from None
    except RecursionError:   # PyYAML composes nested collections recursively
        raise ConfigError(f"config file: nested too deeply to read, got {str(path)!r}; "
                          "a configuration needs a few levels of nesting at most") from None


def default_secrets_path() -> str | None:
    """$CHARGING_SECRETS, else ./.secrets when present. The tests point CHARGING_SECRETS at an empty
    file, so no test ever reads the token a user keeps in ./.secrets."""
    chosen = os.environ.get("CHARGING_SECRETS")
    if chosen:
        return chosen
    return ".secrets" if Path(".secrets").is_file() else None


DEFAULT_CONFIG_FILE = "config.yaml"


def default_config_path(env: Mapping[str, str] | None = None) -> str | None:
    """Every entry point's --config default: $CHARGING_CONFIG, else ./config.yaml when present, else none
    (built-in defaults and the environment only). `make up` and each component alone read the same file."""
    chosen = (os.environ if env is None else env).get("CHARGING_CONFIG")
    if chosen:
        return chosen
    return DEFAULT_CONFIG_FILE if Path(DEFAULT_CONFIG_FILE).is_file() else None


def load_files(config_path: str | None, secrets_path: str | None, env: Mapping[str, str],
               site: str | None = None) -> Config:
    """The entry points' loader: YAML file (optional), secrets file (optional, default
    $CHARGING_SECRETS or ./.secrets), env; for `site` (default $CHARGING_SITE, else the first)."""
    mapping = read_yaml(config_path) if config_path else {}
    secrets_path = secrets_path or default_secrets_path()
    return load(mapping, env, read_secrets(secrets_path) if secrets_path else {}, site)


def reference_rows() -> Iterator[tuple[str, str, str, str]]:
    """(key, environment variable, default, meaning) for every setting, for docs/configuration.md."""
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = f.metadata["default"]
            shown = "" if default in (None, [], {}) else str(default)
            yield f"{section}.{f.name}", f.metadata["env"] or "", shown, f.metadata["doc"]
