"""Validated scenario configuration as frozen records (built by ``simulator.scenario``).

Nothing here reads files or validates: these are the plain, immutable values the model,
prices and wire builders are configured with. Defaults mirror the scenario format's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from simulator.faults import FaultSpec


@dataclass(frozen=True)
class PowerFlows:
    base_load_kw: float = 0.8
    solar_peak_kw: float = 0.0


@dataclass(frozen=True)
class SiteConfig:
    energy_site_id: int = 1689500000123456
    site_name: str = "Home"
    site_id: str = "STE20231212-00123"
    time_zone: str = "America/Chicago"
    power_flows: PowerFlows | None = None


@dataclass(frozen=True)
class WifiConfig:
    ssid: str = "HomeWiFi"
    signal_strength: int = 54
    rssi: int = -63
    snr: int = 34
    connected: bool = True
    ip: str = "192.168.1.102"
    internet: bool = True
    mac: str = "AA:BB:CC:DD:EE:FF"


@dataclass(frozen=True)
class LifetimeInit:
    contactor_cycles: int = 40
    contactor_cycles_loaded: int = 3
    alert_count: int = 120
    thermal_foldbacks: int = 0
    avg_startup_temp: float = 24.5
    charge_starts: int = 40
    energy_wh: int = 350000
    connector_cycles: int = 30
    uptime_s: int = 9000000
    charging_time_s: int = 150000


@dataclass(frozen=True)
class ChargerConfig:
    name: str
    serial: str
    part_number: str
    device_id: str
    firmware: str = "23.24.3+gba52398ee0bc71"
    wiring: str = "split_phase"
    grid_v: float = 240.0
    grid_hz: float = 60.0
    max_current_a: float = 48.0
    role: str = "standalone"
    leader: str | None = None
    sharing_max_current_a: float | None = None
    vitals_layout: str = "old"
    lifetime_energy: str = "on_session_end"
    ambient_c: float = 20.0
    uptime_s: int = 86400
    wifi: WifiConfig = field(default_factory=WifiConfig)
    lifetime: LifetimeInit = field(default_factory=LifetimeInit)

    @property
    def din(self) -> str:
        return f"{self.part_number}--{self.serial}"

    @property
    def reachable(self) -> bool:
        """Followers sit on the leader's private Wi-Fi and have no LAN listener."""
        return self.role != "follower"

    @property
    def volts_for_power(self) -> float:
        """Watts per ampere of vehicle current: grid_v (split phase) or 3 x grid_v (3-phase)."""
        return self.grid_v * (3.0 if self.wiring == "three_phase" else 1.0)


@dataclass(frozen=True)
class VehicleConfig:
    vin: str
    name: str
    display_name: str
    target_id: str
    id: int
    battery_kwh: float = 75.0
    soc: float = 50.0
    charge_limit: int = 80
    max_power_kw: float = 11.5
    efficiency: float = 0.92
    ramp_s: float = 30.0
    taper_pct: float = 3.0
    taper_floor_kw: float = 1.0
    autostart: bool = True
    asleep: bool = False
    active: bool = True
    sleep_after_s: float = 600.0
    odometer_miles: float = 12345.6
    car_version: str = "2024.26.7 a1b2c3d4e5f6"
    range_miles: float = 310.0
    car_type: str = "model3"
    latitude: float = 41.8781
    longitude: float = -87.6298


@dataclass(frozen=True)
class PriceOverride:
    """Price for every 5-minute interval overlapping (start, end], offsets from origin."""

    start_s: float
    end_s: float
    price: float


@dataclass(frozen=True)
class ExplicitPrices:
    """values[i] is the price of the i-th interval, the first one containing origin + start."""

    start_s: float
    values: tuple[float, ...]


@dataclass(frozen=True)
class PriceConfig:
    seed: int = 7
    base: float = 3.0
    amplitude: float = 2.5
    noise: float = 0.6
    negative_chance: float = 0.08
    history_days: float = 35.0
    lag_s: float = 0.0
    overrides: tuple[PriceOverride, ...] = ()
    explicit: ExplicitPrices | None = None
    forecast_error: float = 0.10  # day-ahead price = true hourly mean x (1 + N(0, forecast_error)), seeded per hour
    spike_chance_per_day: float = 0.0  # expected random spikes per local day (0 = none; 0.3 = on ~30 % of days)
    spike_cents: tuple[float, float] = (15.0, 120.0)  # a random spike's price range, cents/kWh


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()


@dataclass(frozen=True)
class DeliveryPeriodConfig:
    """One time-of-day delivery rate: local [start, end) minutes of the day, wrapping past
    midnight when start > end, on the listed months (1..12) and weekdays (0 = Monday)."""

    start_min: int
    end_min: int  # 1..1440 (1440 = "24:00")
    per_kwh: float  # $/kWh
    name: str = ""
    months: tuple[int, ...] = tuple(range(1, 13))
    days: tuple[int, ...] = tuple(range(7))


@dataclass(frozen=True)
class TariffConfig:
    """How the simulator bills what it simulates (ground truth for the suite's costing).

    supply_billing: ``hourly_average`` (ComEd: each local clock hour at the mean of its twelve
    5-minute prices) or ``interval`` (each 5-minute interval at its own price). Money in $;
    reference_supply_per_kwh 0 means "no reference" (reference and savings are null).
    """

    supply_billing: str = "hourly_average"
    delivery_per_kwh: float = 0.075
    delivery_periods: tuple[DeliveryPeriodConfig, ...] = ()
    monthly_fixed: float = 19.56
    capacity_per_month: float = 0.0
    reference_supply_per_kwh: float = 0.0


@dataclass(frozen=True)
class HistoricalSession:
    charger: str
    target_id: str
    start_s: float
    duration_s: float
    energy_wh: int


@dataclass(frozen=True)
class TelemetryConfig:
    delay_s: float = 6 * 3600.0
    meter_error: float = 0.0
    empty_as_null: bool = True
    history: tuple[HistoricalSession, ...] = ()
    # Tessie's /{vin}/charges: how long after a charge ends it is listed, the name it gives home, and the
    # rate it prices home charging at (a Tessie setting, not the bill)
    charges_delay_s: float = 5.0
    home_location: str = "Home"
    home_cost_per_kwh: float = 0.15


@dataclass(frozen=True)
class Quirks:
    stale_cache_while_charging: bool = False


@dataclass(frozen=True)
class Event:
    """One scheduled change. ``kind`` picks which of the optional fields matter.

    kinds: plug_in (vehicle, charger), unplug, user_start, user_stop, sleep, wake (vehicle),
    drive (vehicle; ``price`` holds the state of charge it comes back with),
    away_charge (vehicle, ``away``: a charge elsewhere that ends now and lasted ``duration_s``),
    dip (charger, duration_s, power_w), temperature (charger, duration_s, temps),
    alert (charger, duration_s, codes, fault_state), price (duration_s, price).
    """

    kind: str
    at_s: float | None = None
    vehicle: str | None = None  # VIN
    charger: str | None = None
    duration_s: float = 0.0
    power_w: float = 0.0
    temps: tuple[tuple[str, float], ...] = ()
    codes: tuple[int, ...] = ()
    fault_state: int | None = None
    price: float = 0.0
    away: "AwayCharge | None" = None


@dataclass(frozen=True)
class AwayCharge:
    """A charge away from home (a Supercharger by default): the car comes back at ``soc``."""

    soc: float
    location: str = "Supercharger"
    supercharger: bool = True
    price_per_kwh: float = 0.45     # what Tesla bills per kWh drawn
    latitude: float = 41.5250
    longitude: float = -88.0817
    efficiency: float = 0.95        # battery energy / energy drawn (DC fast charging)


READ_RESOLUTIONS = ("BILLING", "DAY", "HOUR", "HALF_HOUR", "QUARTER_HOUR")  # Opower's names, coarse to fine


@dataclass(frozen=True)
class MeterCorrection:
    """A local day whose reads are first published scaled by ``factor`` (an estimate), then
    replaced by the true values ``after_s`` after the day ends."""

    day: date
    factor: float = 0.9
    after_s: float = 72 * 3600.0


@dataclass(frozen=True)
class MeterConfig:
    """The home's utility meter as ComEd's Opower portal shows it (``simulator.meter``) and the
    login in front of it (``simulator.upstreams.b2c``). Durations in simulated seconds."""

    enabled: bool = True
    username: str = "demo@example.com"
    password: str = "demo-password"
    mfa_code: str = "123456"
    account_number: str = "0123456789"
    read_resolution: str = "HALF_HOUR"
    base_load_kw: float = 0.6
    seed: int = 11
    delay_s: float = 36 * 3600.0
    history_s: float = 40 * 86400.0
    bill_cycle_day: int = 1
    bill_delay_s: float = 3 * 86400.0
    refresh_token_lifetime_s: float = 14 * 86400.0
    corrections: tuple[MeterCorrection, ...] = ()


@dataclass(frozen=True)
class Scenario:
    start: float | None = None  # None = wall clock at start
    speed: float = 1.0
    seed: int = 1
    site: SiteConfig = field(default_factory=SiteConfig)
    chargers: tuple[ChargerConfig, ...] = ()
    vehicles: tuple[VehicleConfig, ...] = ()
    prices: PriceConfig = field(default_factory=PriceConfig)
    events: tuple[Event, ...] = ()
    faults: tuple[FaultSpec, ...] = ()
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    quirks: Quirks = field(default_factory=Quirks)
    tariff: TariffConfig = field(default_factory=TariffConfig)
    meter: MeterConfig = field(default_factory=MeterConfig)

    def charger(self, name: str) -> ChargerConfig:
        for c in self.chargers:
            if c.name == name:
                return c
        raise KeyError(name)

    def vehicle(self, ref: str) -> VehicleConfig:
        """By VIN or scenario name."""
        for v in self.vehicles:
            if ref in (v.vin, v.name):
                return v
        raise KeyError(ref)
