"""Money arithmetic (SPEC R1, R9): pure functions, Hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flattr_node.money import format_amount, parse_amount
from flattr_node.rules import fee_of, split_evenly

amounts = st.integers(min_value=0, max_value=10**12)
counts = st.integers(min_value=1, max_value=5000)


@given(amounts, counts)
def test_shares_add_up_to_the_amount(amount, n):
    shares = split_evenly(amount, n)
    assert len(shares) == n
    assert sum(shares) == amount


@given(amounts, counts)
def test_shares_differ_by_at_most_one_cent_and_are_never_negative(amount, n):
    shares = split_evenly(amount, n)
    assert max(shares) - min(shares) <= 1
    assert min(shares) >= 0
    assert all(isinstance(s, int) and not isinstance(s, bool) for s in shares)


@given(amounts, counts)
def test_the_earliest_get_the_extra_cent(amount, n):
    """R9: base = amount // n; the r = amount - base*n earliest get one more."""
    shares = split_evenly(amount, n)
    base = amount // n
    r = amount - base * n
    assert shares == [base + 1] * r + [base] * (n - r)
    assert shares == sorted(shares, reverse=True)


def test_worked_example_two_flattrs_of_two_euros():
    assert split_evenly(200, 2) == [100, 100]
    assert split_evenly(200, 3) == [67, 67, 66]
    assert split_evenly(1, 3) == [1, 0, 0]


@pytest.mark.parametrize("amount, n", [(100, 0), (100, -1), (-1, 2)])
def test_split_refuses_nonsense(amount, n):
    with pytest.raises(ValueError):
        split_evenly(amount, n)


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=100))
def test_fee_is_the_floor_of_the_percentage_and_never_exceeds_the_share(share, percent):
    fee = fee_of(share, percent)
    assert fee == (share * percent) // 100
    assert 0 <= fee <= share
    # floor: the fee is the largest whole cent not above share * percent / 100
    assert fee * 100 <= share * percent < (fee + 1) * 100


def test_fee_examples():
    assert fee_of(100, 10) == 10
    assert fee_of(99, 10) == 9
    assert fee_of(9, 10) == 0
    assert fee_of(67, 0) == 0
    assert fee_of(67, 100) == 67


@pytest.mark.parametrize("percent", [-1, 101])
def test_fee_refuses_a_bad_percentage(percent):
    with pytest.raises(ValueError):
        fee_of(100, percent)


@pytest.mark.parametrize(
    "text, cents",
    [("2", 200), ("2.5", 250), ("2,50", 250), (" 10.05 ", 1005), ("0.01", 1), ("0", 0)],
)
def test_parse_amount(text, cents):
    assert parse_amount(text, "EUR") == cents
    assert isinstance(parse_amount(text, "EUR"), int)


def test_parse_amount_knows_currencies_without_cents():
    assert parse_amount("500", "JPY") == 500
    with pytest.raises(ValueError):
        parse_amount("5.5", "JPY")


@pytest.mark.parametrize("text", ["", "abc", "-2", "2.505", "1e3", "2.5.5", "nan", "inf", "1 000"])
def test_parse_amount_refuses_what_is_not_an_amount(text):
    with pytest.raises(ValueError):
        parse_amount(text, "EUR")


@given(st.integers(min_value=0, max_value=10**11))
def test_format_then_parse_round_trips_without_floats(cents):
    text = format_amount(cents, "EUR", locale="en")
    plain = text.replace("€", "").replace(",", "")
    assert parse_amount(plain, "EUR") == cents


def test_format_amount_is_exact_for_huge_amounts():
    # 2**53 + 1 cents: a float would lose the last cent.
    assert format_amount(2**53 + 1, "EUR", "en") == "€90,071,992,547,409.93"
    assert format_amount(100, "EUR", "de") == "1,00\xa0€"
