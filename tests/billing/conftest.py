"""Fixtures for the price book's tests."""

import pytest

from billing import pricebook, prices


@pytest.fixture(autouse=True)
def price_book(monkeypatch):
    """Price by the shipped table alone: pricebook's rules need no database, and its tests name
    shipped sources ("list:mistral/...") that a database row would suffix with "@db#<id>".

    tests/billing/test_price_table.py overrides this to read the ModelPrice rows, as production does.
    """
    monkeypatch.setattr(pricebook, "FINDERS", [prices.find])
