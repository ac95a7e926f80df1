"""The Python side and the C core agree: the stats tuple's field names and order,
and the constants both define.  Nothing is installed here."""

from bump_global import _config, _core
from bump_global._records import Stats


def test_stats_counter_fields_are_the_cores_stats_fields_in_order():
    fields = _core.STATS_FIELDS
    assert len(fields) == len(set(fields)) > 20
    assert Stats._fields[: len(fields)] == fields
    # What follows the counters is filled from config(), not from the tuple.
    assert Stats._fields[len(fields)] == "config"


def test_python_constants_equal_the_cores():
    assert _config.MIN_SIZE == _core.MIN_SIZE
    assert _core.ALIGNMENT == 16


def test_stats_address_space_uses_the_cores_reserve():
    values = dict.fromkeys(_core.STATS_FIELDS, 0)
    values.update(base=1 << 40, reserved=64 << 20)
    stats = Stats(**values, config=_config.Config.from_values({"size": 64 << 20}))
    assert stats.address_space == 2 * (64 << 20) + _core.EMERGENCY_RESERVE
    assert stats.contains((1 << 40) + stats.address_space - 1)
    assert not stats.contains((1 << 40) + stats.address_space)

