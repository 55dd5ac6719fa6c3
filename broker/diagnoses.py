"""Why Kraken answered ``EAPI:Invalid nonce``, as far as this host can tell: the diagnosis codes
and what each means for the operator.

:meth:`broker.nonce.KeyChannel.diagnosis` gives ``second_writer`` or
``restart_below_high_water`` (on :attr:`broker.errors.InvalidNonceError.diagnosis`); the dashboard
adds the others from what it sees. Re-exported by :mod:`broker.errors` and :mod:`broker`.
"""

from __future__ import annotations

__all__ = ["NONCE_DIAGNOSES"]

#: why an ``EAPI:Invalid nonce`` happened, as far as this host can tell: code -> explanation
NONCE_DIAGNOSES: dict[str, str] = {
    "second_writer": (
        "Another program is using this API key outside krakenwatch's nonce store (its nonces "
        "overtook ours after this host's own calls were accepted)."
    ),
    "restart_below_high_water": (
        "This host had no record of the key: a previous session, another host or another program "
        "(or a finer nonce unit) already used higher nonces than this host's clock gives."
    ),
    "unit_downgrade": "The key was used with a finer nonce unit before; coarser nonces fail forever.",
    "clock_behind": "This host's clock is behind Kraken's, so time-based nonces start too low.",
    "stranded_key": "The key's nonce high-water mark runs far ahead of the wall clock.",
}
