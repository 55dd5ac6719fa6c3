"""Balances valued in US dollars: which priced asset a balance code is, per-asset values, totals.

Pure code: the prices come in (:class:`UsdPrices`, fetched by :mod:`dashboard.monitor.prices`). Money is
:class:`~decimal.Decimal` throughout, and an unknown balance or price is never a number: a total
exists only when every non-zero asset of the account has a price; otherwise the priced part and
the unpriced assets are said separately.

Asset codes as ``Balance`` returns them: legacy four-letter codes with an X (crypto) or Z (fiat)
prefix (``XXBT``, ``ZUSD``), newer codes without (``USDT``, ``DOT``), and staked or earning
balances with a suffix (``ETH2.S``, ``XBT.M``, ``DOT.B``, ``USDC.F``, ``ETH.T``). A balance is
valued as its base asset, with the suffix dropped; ``ETH2`` (staked ETH) as ETH.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from dashboard.monitor.status import AccountStatus

__all__ = [
    "STAKING_SUFFIXES",
    "USD",
    "AccountValue",
    "AssetValue",
    "FleetValue",
    "UsdPrices",
    "base_asset",
    "describe_account",
    "describe_fleet",
    "format_usd",
    "held_assets",
    "priced_as",
    "value_account",
    "value_fleet",
]

#: Kraken's US dollar, the quote of every pair used for prices (one unit is worth exactly 1)
USD = "ZUSD"
#: suffixes of staked (``.S``), bonded/locked (``.M``), yield-bearing (``.B``), opt-in rewards
#: (``.F``) and tokenized (``.T``) balances of an asset
STAKING_SUFFIXES = (".S", ".M", ".B", ".F", ".T")
#: assets Kraken has no USD pair for, valued as another one (staked ETH as ETH)
VALUED_AS = {"ETH2": "ETH"}
_LEGACY = re.compile(r"[XZ][A-Z0-9]{3}")
_CENT = Decimal("0.01")


def base_asset(code: str) -> str:
    """The asset a balance code holds: ``ETH2.S`` -> ``ETH2``, ``XBT.M`` -> ``XBT``."""
    for suffix in STAKING_SUFFIXES:
        if code.endswith(suffix):
            return code[: -len(suffix)]
    return code


def priced_as(code: str, priced: Collection[str]) -> str | None:
    """The asset among ``priced`` (Kraken's codes: the bases of its USD pairs, and ``ZUSD``) whose
    price values balance ``code``, or ``None``. ``XBT.M`` -> ``XXBT``, ``ETH2.S`` -> ``XETH``,
    ``USD.F`` -> ``ZUSD``, ``USDT`` -> ``USDT``."""
    base = VALUED_AS.get(base_asset(code), base_asset(code))
    candidates = [base]
    if len(base) == 3:  # the legacy code of an old asset: XBT -> XXBT, USD -> ZUSD
        candidates += [f"X{base}", f"Z{base}"]
    elif _LEGACY.fullmatch(base):  # and the other way round: XXBT -> XBT
        candidates.append(base[1:])
    return next((c for c in candidates if c in priced), None)


@dataclass(frozen=True)
class UsdPrices:
    """USD prices by balance code (as ``Balance`` names the asset), and why the others have none."""

    prices: Mapping[str, Decimal] = field(default_factory=dict)
    #: balance code -> the reason it has no price (no USD pair on Kraken, Ticker failed: ...)
    missing: Mapping[str, str] = field(default_factory=dict)
    #: when the prices were read (Unix time; ``None`` when nothing was fetched)
    fetched_at: float | None = None

    def reason(self, code: str) -> str:
        return self.missing.get(code, "no price")


@dataclass(frozen=True)
class AssetValue:
    asset: str
    #: the exact string Kraken sent
    amount: str
    price: Decimal | None
    #: ``amount × price``; also 0 for a zero amount without a price (nothing is unknown there)
    value: Decimal | None
    #: why ``value`` is unknown
    missing: str | None = None


@dataclass(frozen=True)
class AccountValue:
    label: str
    assets: list[AssetValue]
    #: why the balance itself is unknown (the last read failed, or none yet)
    error: str | None = None

    @property
    def unpriced(self) -> list[AssetValue]:
        """The assets whose value is unknown (a non-zero amount without a price)."""
        return [a for a in self.assets if a.value is None]

    @property
    def priced_total(self) -> Decimal:
        """The sum of the known values (the whole total only when nothing is unpriced)."""
        return sum((a.value for a in self.assets if a.value is not None), Decimal(0))

    @property
    def total(self) -> Decimal | None:
        """The account's value in USD; ``None`` when the balance or a needed price is unknown."""
        if self.error is not None or self.unpriced:
            return None
        return self.priced_total


@dataclass(frozen=True)
class FleetValue:
    accounts: list[AccountValue]

    @property
    def unknown(self) -> list[AccountValue]:
        """Accounts whose balance is unknown."""
        return [a for a in self.accounts if a.error is not None]

    @property
    def unpriced(self) -> list[AssetValue]:
        return [asset for a in self.accounts for asset in a.unpriced]

    @property
    def priced_total(self) -> Decimal:
        return sum((a.priced_total for a in self.accounts), Decimal(0))

    @property
    def total(self) -> Decimal | None:
        """Every account's value in USD; ``None`` when any balance or needed price is unknown."""
        if self.unknown or self.unpriced:
            return None
        return self.priced_total


def _value(asset: str, amount: str, prices: UsdPrices) -> AssetValue:
    try:
        quantity = Decimal(amount)
    except InvalidOperation:
        return AssetValue(asset, amount, None, None, "not a decimal number")
    price = prices.prices.get(asset)
    if price is not None:
        return AssetValue(asset, amount, price, quantity * price)
    if quantity == 0:
        return AssetValue(asset, amount, None, Decimal(0), prices.reason(asset))
    return AssetValue(asset, amount, None, None, prices.reason(asset))


def value_account(status: AccountStatus, prices: UsdPrices) -> AccountValue:
    """``status``'s balances valued with ``prices`` (its last known balance counts as unknown
    while the last read failed)."""
    if status.balance_error:
        return AccountValue(status.label, [], status.balance_error)
    if status.balances is None:
        return AccountValue(status.label, [], "not read yet")
    assets = [_value(a, amount, prices) for a, amount in sorted(status.balances.items())]
    return AccountValue(status.label, assets)


def value_fleet(accounts: Sequence[AccountStatus], prices: UsdPrices) -> FleetValue:
    return FleetValue([value_account(a, prices) for a in accounts])


def held_assets(accounts: Iterable[AccountStatus]) -> list[str]:
    """Every asset code in the known balances (what prices are needed for)."""
    return sorted({code for a in accounts if not a.balance_error for code in a.balances or {}})


def format_usd(amount: Decimal) -> str:
    """``$1,234.57`` (to the cent, half to even)."""
    return f"${amount.quantize(_CENT, ROUND_HALF_EVEN):,.2f}"


def describe_total(priced_total: Decimal, unpriced: Sequence[AssetValue], most: int = 3) -> str:
    """The total, or the priced part plus each unpriced asset in its own unit, so that the number
    shown is never taken for the total: ``$575.50 + 1250.00 KFEE (no price)``."""
    if not unpriced:
        return format_usd(priced_total)
    shown = [f"{a.amount} {a.asset}" for a in unpriced[:most]]
    if len(unpriced) > most:
        shown.append(f"{len(unpriced) - most} more assets")
    return f"{format_usd(priced_total)} + {' + '.join(shown)} (no price)"


def describe_account(value: AccountValue) -> str:
    """One line: ``$10,907.40``, ``$575.50 + 1250.00 KFEE (no price)``, ``unknown (error ...)``."""
    if value.error is not None:
        return f"unknown ({value.error})"
    return describe_total(value.priced_total, value.unpriced)


def describe_fleet(fleet: FleetValue) -> str:
    """The accounts together, with the unpriced assets and unknown balances said, never hidden."""
    text = describe_total(fleet.priced_total, fleet.unpriced)
    if fleet.unknown:
        text += f"; balance unknown: {', '.join(a.label for a in fleet.unknown)}"
    return text
