"""Configuration parsing and validation (pure Python, no install)."""

import pytest

from bump_global._config import MIN_SIZE, Config, format_size, parse_size


@pytest.mark.parametrize(
    "value, expected",
    [
        (16 << 20, 16 << 20),
        ("1G", 1 << 30),
        ("512M", 512 << 20),
        ("4G", 4 << 30),
        ("64GiB", 64 << 30),
        ("64gib", 64 << 30),
        ("20480K", 20 << 20),
        ("20480KB", 20 << 20),
        ("1.5G", 3 << 29),
        (" 32 M ", 32 << 20),
        ("1T", 1 << 40),
        ("16777216", 16 << 20),
        ("16777216B", 16 << 20),
    ],
)
def test_parse_size_accepts(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "G", "1X", "1GG", "-1G", "1 G B", "one", "1e9", True, 1.5, None, b"1G", [1]],
)
def test_parse_size_rejects_with_help(value):
    with pytest.raises(ValueError, match="expected a number of bytes"):
        parse_size(value)


def test_parse_size_minimum_and_maximum():
    assert parse_size(MIN_SIZE) == parse_size("16M") == MIN_SIZE
    with pytest.raises(ValueError, match="at least 16M") as info:
        parse_size(MIN_SIZE - 1)
    assert "cannot hold what the interpreter allocates after the install" in str(info.value)
    with pytest.raises(ValueError, match="at least 16M"):
        parse_size("1M")
    with pytest.raises(ValueError, match="too large"):
        parse_size("100000000T")


def test_config_rejects_bad_choices_listing_the_accepted_ones():
    with pytest.raises(ValueError, match=r"invalid scope 'everything'.*'objects'.*'python'"):
        Config.from_values({"size": "1G", "scope": "everything"})
    with pytest.raises(ValueError, match=r"invalid on_exhausted 'crash'.*'fallback'.*'error'"):
        Config.from_values({"size": "1G", "on_exhausted": "crash"})
    config = Config.from_values({"size": "2G", "scope": "objects", "on_exhausted": "error"})
    engine = config.engine_options()
    assert (config.size, engine["scope"], engine["on_exhausted"]) == (2 << 30, 1, 2)
    assert Config.from_engine({**engine, "size": config.size}) == config


def test_format_size():
    assert format_size(0) == "0 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(3 << 30) == "3.0 GiB"
