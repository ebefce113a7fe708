"""Range-function histogram math (histogram_range) against Prometheus' own expectations.

``CASES`` come from ../shared/conformance/promqltest: an eval of rate/increase/delta/irate/idelta/
sum_over_time/avg_over_time (optionally inside histogram_count/histogram_sum) over a series loaded
from literals. Each row: file:line, function, range (ms), eval time (ms), the window's points
(timestamp, literal with the hint the TSDB reads back), the wrapper, and the expected value.
"""

from __future__ import annotations

import math

import pytest

from clearsight.model.histogram import CounterResetHint, FloatHistogram
from clearsight.model.histogram_range import (
    Note,
    avg_over_time,
    instant_delta,
    is_start_timestamp_reset,
    rate_delta,
    start_time_overlap,
    sum_over_time,
)
from clearsight.model.histogram_text import almost_equal, parse_histogram, promqltest_equal

CASES: list[tuple[str, str, int, int, list[tuple[int, str]], str, str]] = [
    (
        "extended_vectors.test:469",
        "rate",
        60000,
        50000,
        [
            (0, "{{count:1 sum:1 offset:1 buckets:[1]}}"),
            (15000, "{{count:2 sum:2 counter_reset_hint:not_reset offset:1 buckets:[2]}}"),
            (30000, "{{count:3 sum:3 counter_reset_hint:not_reset offset:1 buckets:[3]}}"),
            (45000, "{{count:4 sum:4 counter_reset_hint:not_reset offset:1 buckets:[4]}}"),
        ],
        "count",
        "0.06666666666666667",
    ),
    (
        "extended_vectors.test:472",
        "increase",
        60000,
        50000,
        [
            (0, "{{count:1 sum:1 offset:1 buckets:[1]}}"),
            (15000, "{{count:2 sum:2 counter_reset_hint:not_reset offset:1 buckets:[2]}}"),
            (30000, "{{count:3 sum:3 counter_reset_hint:not_reset offset:1 buckets:[3]}}"),
            (45000, "{{count:4 sum:4 counter_reset_hint:not_reset offset:1 buckets:[4]}}"),
        ],
        "count",
        "4",
    ),
    (
        "extended_vectors.test:571",
        "increase",
        90000,
        90000,
        [
            (
                30000,
                "{{schema:-53 count:4 sum:4 custom_values:[5 10] counter_reset_hint:not_reset buckets:[4]}}",
            ),
            (60000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
            (
                90000,
                "{{schema:-53 count:3 sum:3 custom_values:[5 10] counter_reset_hint:not_reset buckets:[3]}}",
            ),
        ],
        "count",
        "4.5",
    ),
    (
        "extended_vectors.test:574",
        "increase",
        90000,
        90000,
        [
            (
                30000,
                "{{schema:-53 count:4 sum:4 custom_values:[5 10] counter_reset_hint:not_reset buckets:[4]}}",
            ),
            (60000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
            (
                90000,
                "{{schema:-53 count:3 sum:3 custom_values:[5 10] counter_reset_hint:not_reset buckets:[3]}}",
            ),
        ],
        "sum",
        "4.5",
    ),
    (
        "functions.test:247",
        "irate",
        1200000,
        1200000,
        [
            (300000, "{{count:5 sum:5 counter_reset_hint:not_reset}}"),
            (600000, "{{count:8 sum:8 counter_reset_hint:not_reset}}"),
            (900000, "{{count:11 sum:11 counter_reset_hint:not_reset}}"),
            (1200000, "{{count:14 sum:14 counter_reset_hint:not_reset}}"),
        ],
        "",
        "{{sum:0.01 count:0.01 counter_reset_hint:gauge}}",
    ),
    (
        "functions.test:292",
        "delta",
        1200000,
        1200000,
        [
            (300000, "{{count:2 sum:1 counter_reset_hint:gauge buckets:[1 1 1]}}"),
            (600000, "{{count:4 sum:2 counter_reset_hint:gauge buckets:[2 2 2]}}"),
            (900000, "{{count:6 sum:3 counter_reset_hint:gauge buckets:[3 3 3]}}"),
            (1200000, "{{count:8 sum:4 counter_reset_hint:gauge buckets:[4 4 4]}}"),
        ],
        "",
        "{{schema:0 sum:4 count:8 buckets:[4 4 4]}}",
    ),
    (
        "functions.test:297",
        "delta",
        1200000,
        1200000,
        [
            (300000, "{{count:2 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (600000, "{{count:4 sum:2 counter_reset_hint:not_reset buckets:[2 2 2]}}"),
            (900000, "{{count:6 sum:3 counter_reset_hint:not_reset buckets:[3 3 3]}}"),
            (1200000, "{{count:8 sum:4 counter_reset_hint:not_reset buckets:[4 4 4]}}"),
        ],
        "",
        "{{schema:0 sum:4 count:8 buckets:[4 4 4]}}",
    ),
    (
        "functions.test:330",
        "idelta",
        1200000,
        1200000,
        [
            (300000, "{{count:5 sum:3 counter_reset_hint:gauge}}"),
            (600000, "{{count:8 sum:4 counter_reset_hint:gauge}}"),
            (900000, "{{count:11 sum:5 counter_reset_hint:gauge}}"),
            (1200000, "{{count:14 sum:6 counter_reset_hint:gauge}}"),
        ],
        "",
        "{{sum:1 count:3 counter_reset_hint:gauge}}",
    ),
    (
        "functions.test:1071",
        "sum_over_time",
        60000,
        55000,
        [
            (0, "{{count:1 sum:1}}"),
            (10000, "{{count:1 sum:1 counter_reset_hint:not_reset}}"),
            (20000, "{{count:1 sum:1 counter_reset_hint:not_reset}}"),
            (30000, "{{count:1 sum:1 counter_reset_hint:not_reset}}"),
            (40000, "{{count:1 sum:1 counter_reset_hint:not_reset}}"),
            (50000, "{{count:1 sum:1 counter_reset_hint:not_reset}}"),
        ],
        "",
        "{{schema:0 sum:6 count:6}}",
    ),
    (
        "functions.test:1074",
        "avg_over_time",
        60000,
        55000,
        [
            (0, "{{count:1 sum:1}}"),
            (10000, "{{count:1 sum:1 counter_reset_hint:not_reset}}"),
            (20000, "{{count:1 sum:1 counter_reset_hint:not_reset}}"),
            (30000, "{{count:1 sum:1 counter_reset_hint:not_reset}}"),
            (40000, "{{count:1 sum:1 counter_reset_hint:not_reset}}"),
            (50000, "{{count:1 sum:1 counter_reset_hint:not_reset}}"),
        ],
        "",
        "{{schema:0 sum:1 count:1}}",
    ),
    (
        "native_histograms.test:158",
        "rate",
        600000,
        3000000,
        [
            (2700000, "{{count:13 sum:22 counter_reset_hint:not_reset buckets:[1 11 1]}}"),
            (3000000, "{{count:14 sum:24 counter_reset_hint:not_reset buckets:[1 12 1]}}"),
        ],
        "",
        "{{count:0.0033333333333333335 sum:0.006666666666666667 offset:1 buckets:[0.0033333333333333335]}}",
    ),
    (
        "native_histograms.test:308",
        "rate",
        45000,
        300000,
        [
            (
                270000,
                "{{schema:1 count:174 sum:349.5999999999999 z_bucket:20 z_bucket_w:0.001 counter_reset_hint:not_reset buckets:[19 20 0 19 19] n_buckets:[19 20 0 19 19]}}",
            ),
            (
                285000,
                "{{schema:1 count:183 sum:367.9999999999999 z_bucket:21 z_bucket_w:0.001 counter_reset_hint:not_reset buckets:[20 21 0 20 20] n_buckets:[20 21 0 20 20]}}",
            ),
            (
                300000,
                "{{schema:1 count:192 sum:386.39999999999986 z_bucket:22 z_bucket_w:0.001 counter_reset_hint:not_reset buckets:[21 22 0 21 21] n_buckets:[21 22 0 21 21]}}",
            ),
        ],
        "",
        "{{schema:1 count:0.6 sum:1.2266666666666652 z_bucket:0.06666666666666667 z_bucket_w:0.001 buckets:[0.06666666666666667 0.06666666666666667 0 0.06666666666666667 0.06666666666666667] n_buckets:[0.06666666666666667 0.06666666666666667 0 0.06666666666666667 0.06666666666666667]}}",
    ),
    (
        "native_histograms.test:1063",
        "increase",
        900000,
        600000,
        [
            (0, "{{count:4 sum:5 buckets:[1 2 1]}}"),
            (300000, "{{count:5 sum:6 buckets:[1 1 3]}}"),
            (600000, "{{count:6 sum:7 counter_reset_hint:not_reset buckets:[1 2 3]}}"),
        ],
        "",
        "{{count:9 sum:10.5 buckets:[1.5 3 4.5]}}",
    ),
    (
        "native_histograms.test:1068",
        "increase",
        900000,
        600000,
        [
            (0, "{{count:4 sum:5 buckets:[1 2 1]}}"),
            (300000, "{{count:5 sum:6 buckets:[1 1 3]}}"),
            (600000, "{{count:6 sum:7 counter_reset_hint:not_reset buckets:[1 2 3]}}"),
        ],
        "count",
        "9",
    ),
    (
        "native_histograms.test:1072",
        "increase",
        900000,
        600000,
        [
            (0, "{{count:4 sum:5 buckets:[1 2 1]}}"),
            (300000, "{{count:5 sum:6 buckets:[1 1 3]}}"),
            (600000, "{{count:6 sum:7 counter_reset_hint:not_reset buckets:[1 2 3]}}"),
        ],
        "sum",
        "10.5",
    ),
    (
        "native_histograms.test:1098",
        "rate",
        60000,
        30000,
        [
            (0, "{{count:1 sum:1 counter_reset_hint:gauge buckets:[1]}}"),
            (30000, "{{count:2 sum:2 counter_reset_hint:gauge buckets:[2]}}"),
        ],
        "",
        "{{count:0.03333333333333333 sum:0.03333333333333333 buckets:[0.03333333333333333]}}",
    ),
    (
        "native_histograms.test:1103",
        "rate",
        90000,
        60000,
        [
            (0, "{{count:1 sum:1 counter_reset_hint:gauge buckets:[1]}}"),
            (30000, "{{count:2 sum:2 counter_reset_hint:gauge buckets:[2]}}"),
            (60000, "{{count:3 sum:3 counter_reset_hint:gauge buckets:[3]}}"),
        ],
        "",
        "{{count:0.03333333333333333 sum:0.03333333333333333 buckets:[0.03333333333333333]}}",
    ),
    (
        "native_histograms.test:1133",
        "rate",
        60000,
        60000,
        [
            (30000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
            (60000, "{{count:4 sum:5 buckets:[1 2 1]}}"),
        ],
        "",
        "{{count:0.08333333333333333 sum:0.10416666666666666 counter_reset_hint:gauge buckets:[0.020833333333333332 0.041666666666666664 0.020833333333333332]}}",
    ),
    (
        "native_histograms.test:1140",
        "rate",
        60000,
        30000,
        [
            (0, "{{count:1 sum:1 buckets:[1]}}"),
            (30000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
        ],
        "",
        "{{schema:-53 sum:0.03333333333333333 count:0.03333333333333333 custom_values:[5 10] buckets:[0.03333333333333333]}}",
    ),
    (
        "native_histograms.test:1152",
        "rate",
        300000,
        300000,
        [
            (60000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (120000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (180000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (240000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
        ],
        "",
        "{{schema:0 sum:0 count:0}}",
    ),
    (
        "native_histograms.test:1163",
        "rate",
        300000,
        300000,
        [
            (60000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (120000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (180000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (240000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
        ],
        "count",
        "0.0",
    ),
    (
        "native_histograms.test:1168",
        "rate",
        300000,
        300000,
        [
            (60000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (120000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (180000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (240000, "{{count:1 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
        ],
        "sum",
        "0.0",
    ),
    (
        "native_histograms.test:1299",
        "sum_over_time",
        780000,
        720000,
        [
            (0, "{{schema:-53 count:1 sum:1 custom_values:[5] buckets:[1]}}"),
            (
                360000,
                "{{schema:-53 count:1 sum:1 custom_values:[5] counter_reset_hint:not_reset buckets:[1]}}",
            ),
            (720000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
        ],
        "",
        "{{schema:-53 count:3 sum:3 custom_values:[5] buckets:[3]}}",
    ),
    (
        "native_histograms.test:1304",
        "avg_over_time",
        780000,
        720000,
        [
            (0, "{{schema:-53 count:1 sum:1 custom_values:[5] buckets:[1]}}"),
            (
                360000,
                "{{schema:-53 count:1 sum:1 custom_values:[5] counter_reset_hint:not_reset buckets:[1]}}",
            ),
            (720000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
        ],
        "",
        "{{schema:-53 count:1 sum:1 custom_values:[5] buckets:[1]}}",
    ),
    (
        "native_histograms.test:1324",
        "delta",
        780000,
        720000,
        [
            (0, "{{schema:-53 count:1 sum:1 custom_values:[5] buckets:[1]}}"),
            (
                360000,
                "{{schema:-53 count:1 sum:1 custom_values:[5] counter_reset_hint:not_reset buckets:[1]}}",
            ),
            (720000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
        ],
        "",
        "{{schema:-53 custom_values:[5]}}",
    ),
    (
        "native_histograms.test:1328",
        "increase",
        780000,
        720000,
        [
            (0, "{{schema:-53 count:1 sum:1 custom_values:[5] buckets:[1]}}"),
            (
                360000,
                "{{schema:-53 count:1 sum:1 custom_values:[5] counter_reset_hint:not_reset buckets:[1]}}",
            ),
            (720000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
        ],
        "",
        "{{schema:-53 custom_values:[5]}}",
    ),
    (
        "native_histograms.test:1332",
        "rate",
        780000,
        720000,
        [
            (0, "{{schema:-53 count:1 sum:1 custom_values:[5] buckets:[1]}}"),
            (
                360000,
                "{{schema:-53 count:1 sum:1 custom_values:[5] counter_reset_hint:not_reset buckets:[1]}}",
            ),
            (720000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
        ],
        "",
        "{{schema:-53 custom_values:[5] }}",
    ),
    (
        "native_histograms.test:1343",
        "sum_over_time",
        780000,
        1080000,
        [
            (
                360000,
                "{{schema:-53 count:1 sum:1 custom_values:[5] counter_reset_hint:not_reset buckets:[1]}}",
            ),
            (720000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
            (
                1080000,
                "{{schema:-53 count:1 sum:1 custom_values:[5 10] counter_reset_hint:not_reset buckets:[1]}}",
            ),
        ],
        "",
        "{{schema:-53 count:3 sum:3 custom_values:[5] buckets:[3]}}",
    ),
    (
        "native_histograms.test:1347",
        "avg_over_time",
        780000,
        1080000,
        [
            (
                360000,
                "{{schema:-53 count:1 sum:1 custom_values:[5] counter_reset_hint:not_reset buckets:[1]}}",
            ),
            (720000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
            (
                1080000,
                "{{schema:-53 count:1 sum:1 custom_values:[5 10] counter_reset_hint:not_reset buckets:[1]}}",
            ),
        ],
        "",
        "{{schema:-53 count:1 sum:1 custom_values:[5] buckets:[1]}}",
    ),
    (
        "native_histograms.test:1368",
        "delta",
        780000,
        1080000,
        [
            (
                360000,
                "{{schema:-53 count:1 sum:1 custom_values:[5] counter_reset_hint:not_reset buckets:[1]}}",
            ),
            (720000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
            (
                1080000,
                "{{schema:-53 count:1 sum:1 custom_values:[5 10] counter_reset_hint:not_reset buckets:[1]}}",
            ),
        ],
        "",
        "{{schema:-53 custom_values:[5]}}",
    ),
    (
        "native_histograms.test:1372",
        "increase",
        780000,
        1080000,
        [
            (
                360000,
                "{{schema:-53 count:1 sum:1 custom_values:[5] counter_reset_hint:not_reset buckets:[1]}}",
            ),
            (720000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
            (
                1080000,
                "{{schema:-53 count:1 sum:1 custom_values:[5 10] counter_reset_hint:not_reset buckets:[1]}}",
            ),
        ],
        "",
        "{{schema:-53 custom_values:[5]}}",
    ),
    (
        "native_histograms.test:1376",
        "rate",
        780000,
        1080000,
        [
            (
                360000,
                "{{schema:-53 count:1 sum:1 custom_values:[5] counter_reset_hint:not_reset buckets:[1]}}",
            ),
            (720000, "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"),
            (
                1080000,
                "{{schema:-53 count:1 sum:1 custom_values:[5 10] counter_reset_hint:not_reset buckets:[1]}}",
            ),
        ],
        "",
        "{{schema:-53 custom_values:[5]}}",
    ),
    (
        "native_histograms.test:1573",
        "avg_over_time",
        60000,
        0,
        [(0, "{{schema:3 count:4 sum:5 buckets:[1 2 1]}}")],
        "",
        "{{schema:3 sum:5 count:4 buckets:[1 2 1]}}",
    ),
    (
        "native_histograms.test:1577",
        "avg_over_time",
        60000,
        0,
        [(0, "{{schema:-53 count:5 sum:1 custom_values:[5 10] buckets:[1 4]}}")],
        "",
        "{{schema:-53 sum:1 count:5 custom_values:[5 10] buckets:[1 4]}}",
    ),
    (
        "native_histograms.test:1673",
        "increase",
        5400000,
        3300000,
        [
            (0, "{{count:15 sum:25 buckets:[5 10]}}"),
            (60000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (360000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (420000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (480000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (540000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (600000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (660000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (720000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (780000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (840000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (900000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (960000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1020000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1080000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1140000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1200000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1260000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1320000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1380000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1440000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1500000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1560000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1620000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1680000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1740000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1800000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1860000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1920000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1980000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2040000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2100000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2160000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2220000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2280000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2340000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2400000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2460000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2520000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2580000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2640000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2700000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2760000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2820000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2880000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2940000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3000000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3060000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
        ],
        "",
        "{{count:2490 sum:50.303030303030305 counter_reset_hint:gauge buckets:[10.06060606060606 2479.939393939394]}}",
    ),
    (
        "native_histograms.test:1681",
        "increase",
        5400000,
        3270000,
        [
            (0, "{{count:15 sum:25 buckets:[5 10]}}"),
            (60000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (360000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (420000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (480000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (540000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (600000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (660000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (720000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (780000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (840000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (900000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (960000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1020000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1080000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1140000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1200000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1260000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1320000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1380000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1440000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1500000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1560000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1620000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1680000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1740000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1800000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1860000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1920000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1980000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2040000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2100000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2160000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2220000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2280000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2340000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2400000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2460000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2520000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2580000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2640000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2700000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2760000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2820000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2880000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2940000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3000000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3060000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
        ],
        "",
        "{{count:2512.9166666666665 sum:50.76599326599326 counter_reset_hint:gauge buckets:[10.153198653198652 2502.7634680134674]}}",
    ),
    (
        "native_histograms.test:1691",
        "increase",
        3315000,
        3300000,
        [
            (0, "{{count:15 sum:25 buckets:[5 10]}}"),
            (60000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (360000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (420000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (480000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (540000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (600000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (660000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (720000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (780000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (840000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (900000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (960000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1020000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1080000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1140000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1200000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1260000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1320000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1380000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1440000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1500000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1560000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1620000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1680000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1740000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1800000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1860000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1920000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1980000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2040000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2100000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2160000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2220000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2280000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2340000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2400000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2460000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2520000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2580000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2640000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2700000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2760000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2820000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2880000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2940000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3000000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3060000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
        ],
        "",
        "{{count:2486.25 sum:50.227272727272734 counter_reset_hint:gauge buckets:[10.045454545454547 2476.2045454545455]}}",
    ),
    (
        "native_histograms.test:1699",
        "increase",
        3285000,
        3270000,
        [
            (0, "{{count:15 sum:25 buckets:[5 10]}}"),
            (60000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (360000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (420000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (480000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (540000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (600000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (660000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (720000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (780000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (840000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (900000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (960000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1020000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1080000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1140000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1200000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1260000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1320000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1380000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1440000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1500000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1560000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1620000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1680000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1740000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1800000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1860000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1920000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1980000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2040000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2100000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2160000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2220000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2280000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2340000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2400000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2460000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2520000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2580000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2640000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2700000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2760000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2820000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2880000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2940000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3000000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3060000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
        ],
        "",
        "{{count:2509.375 sum:50.69444444444444 counter_reset_hint:gauge buckets:[10.13888888888889 2499.236111111111]}}",
    ),
    (
        "native_histograms.test:1704",
        "increase",
        5400000,
        3300000,
        [
            (0, "{{count:15 sum:25 buckets:[5 10]}}"),
            (60000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (360000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (420000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (480000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (540000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (600000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (660000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (720000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (780000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (840000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (900000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (960000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1020000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1080000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1140000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1200000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1260000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1320000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1380000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1440000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1500000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1560000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1620000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1680000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1740000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1800000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1860000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1920000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1980000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2040000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2100000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2160000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2220000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2280000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2340000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2400000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2460000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2520000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2580000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2640000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2700000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2760000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2820000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2880000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2940000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3000000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3060000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
        ],
        "count",
        "2490",
    ),
    (
        "native_histograms.test:1708",
        "increase",
        5400000,
        3270000,
        [
            (0, "{{count:15 sum:25 buckets:[5 10]}}"),
            (60000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (360000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (420000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (480000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (540000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (600000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (660000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (720000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (780000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (840000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (900000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (960000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1020000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1080000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1140000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1200000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1260000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1320000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1380000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1440000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1500000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1560000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1620000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1680000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1740000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1800000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1860000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1920000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1980000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2040000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2100000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2160000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2220000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2280000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2340000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2400000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2460000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2520000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2580000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2640000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2700000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2760000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2820000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2880000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2940000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3000000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3060000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
        ],
        "count",
        "2512.9166666666665",
    ),
    (
        "native_histograms.test:1712",
        "increase",
        3315000,
        3300000,
        [
            (0, "{{count:15 sum:25 buckets:[5 10]}}"),
            (60000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (360000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (420000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (480000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (540000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (600000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (660000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (720000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (780000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (840000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (900000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (960000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1020000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1080000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1140000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1200000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1260000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1320000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1380000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1440000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1500000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1560000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1620000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1680000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1740000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1800000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1860000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1920000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1980000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2040000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2100000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2160000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2220000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2280000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2340000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2400000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2460000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2520000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2580000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2640000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2700000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2760000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2820000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2880000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2940000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3000000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3060000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
        ],
        "count",
        "2486.25",
    ),
    (
        "native_histograms.test:1716",
        "increase",
        3285000,
        3270000,
        [
            (0, "{{count:15 sum:25 buckets:[5 10]}}"),
            (60000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (300000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (360000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (420000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (480000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (540000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (600000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (660000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (720000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (780000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (840000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (900000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (960000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1020000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1080000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1140000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1200000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1260000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1320000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1380000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1440000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1500000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1560000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1620000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1680000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1740000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1800000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1860000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1920000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (1980000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2040000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2100000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2160000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2220000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2280000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2340000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2400000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2460000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2520000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2580000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2640000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2700000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2760000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2820000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2880000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (2940000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3000000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3060000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3120000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3180000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
            (3240000, "{{count:2490 sum:75 counter_reset_hint:not_reset buckets:[15 2475]}}"),
        ],
        "count",
        "2509.375",
    ),
    (
        "native_histograms.test:1782",
        "sum_over_time",
        180000,
        300000,
        [
            (180000, "{{count:14 sum:12 counter_reset_hint:not_reset buckets:[5 5 4]}}"),
            (240000, "{{count:17 sum:14 counter_reset_hint:not_reset buckets:[6 6 5]}}"),
            (300000, "{{count:4 sum:4 counter_reset_hint:gauge buckets:[1 2 1]}}"),
        ],
        "",
        "{{count:35 sum:30 counter_reset_hint:gauge buckets:[12 13 10]}}",
    ),
    (
        "native_histograms.test:1787",
        "avg_over_time",
        180000,
        300000,
        [
            (180000, "{{count:14 sum:12 counter_reset_hint:not_reset buckets:[5 5 4]}}"),
            (240000, "{{count:17 sum:14 counter_reset_hint:not_reset buckets:[6 6 5]}}"),
            (300000, "{{count:4 sum:4 counter_reset_hint:gauge buckets:[1 2 1]}}"),
        ],
        "",
        "{{count:11.666666666666666 sum:10 counter_reset_hint:gauge buckets:[4 4.333333333333334 3.333333333333333]}}",
    ),
    (
        "native_histograms.test:1803",
        "sum_over_time",
        600000,
        840000,
        [
            (300000, "{{count:4 sum:4 counter_reset_hint:gauge buckets:[1 2 1]}}"),
            (360000, "{{count:5 sum:6 buckets:[2 2 1]}}"),
            (420000, "{{count:8 sum:8 counter_reset_hint:not_reset buckets:[3 3 2]}}"),
            (480000, "{{count:11 sum:10 counter_reset_hint:not_reset buckets:[4 4 3]}}"),
            (540000, "{{count:14 sum:12 counter_reset_hint:not_reset buckets:[5 5 4]}}"),
            (600000, "{{count:17 sum:14 counter_reset_hint:not_reset buckets:[6 6 5]}}"),
            (660000, "{{count:4 sum:4 buckets:[1 2 1]}}"),
            (720000, "{{count:7 sum:6 counter_reset_hint:not_reset buckets:[2 3 2]}}"),
            (780000, "{{count:10 sum:8 counter_reset_hint:not_reset buckets:[3 4 3]}}"),
            (840000, "{{count:13 sum:10 counter_reset_hint:not_reset buckets:[4 5 4]}}"),
        ],
        "",
        "{{count:93 sum:82 counter_reset_hint:gauge buckets:[31 36 26]}}",
    ),
    (
        "native_histograms.test:1808",
        "avg_over_time",
        600000,
        840000,
        [
            (300000, "{{count:4 sum:4 counter_reset_hint:gauge buckets:[1 2 1]}}"),
            (360000, "{{count:5 sum:6 buckets:[2 2 1]}}"),
            (420000, "{{count:8 sum:8 counter_reset_hint:not_reset buckets:[3 3 2]}}"),
            (480000, "{{count:11 sum:10 counter_reset_hint:not_reset buckets:[4 4 3]}}"),
            (540000, "{{count:14 sum:12 counter_reset_hint:not_reset buckets:[5 5 4]}}"),
            (600000, "{{count:17 sum:14 counter_reset_hint:not_reset buckets:[6 6 5]}}"),
            (660000, "{{count:4 sum:4 buckets:[1 2 1]}}"),
            (720000, "{{count:7 sum:6 counter_reset_hint:not_reset buckets:[2 3 2]}}"),
            (780000, "{{count:10 sum:8 counter_reset_hint:not_reset buckets:[3 4 3]}}"),
            (840000, "{{count:13 sum:10 counter_reset_hint:not_reset buckets:[4 5 4]}}"),
        ],
        "",
        "{{count:9.3 sum:8.2 counter_reset_hint:gauge buckets:[3.1 3.6 2.6]}}",
    ),
    (
        "native_histograms.test:1824",
        "sum_over_time",
        180000,
        180000,
        [
            (60000, "{{count:8 sum:8 counter_reset_hint:not_reset buckets:[3 3 2]}}"),
            (120000, "{{count:11 sum:10 counter_reset_hint:not_reset buckets:[4 4 3]}}"),
            (180000, "{{count:14 sum:12 counter_reset_hint:not_reset buckets:[5 5 4]}}"),
        ],
        "",
        "{{count:33 sum:30 counter_reset_hint:not_reset buckets:[12 12 9]}}",
    ),
    (
        "native_histograms.test:1829",
        "avg_over_time",
        180000,
        180000,
        [
            (60000, "{{count:8 sum:8 counter_reset_hint:not_reset buckets:[3 3 2]}}"),
            (120000, "{{count:11 sum:10 counter_reset_hint:not_reset buckets:[4 4 3]}}"),
            (180000, "{{count:14 sum:12 counter_reset_hint:not_reset buckets:[5 5 4]}}"),
        ],
        "",
        "{{count:11 sum:10 counter_reset_hint:not_reset buckets:[4 4 3]}}",
    ),
    (
        "native_histograms.test:1845",
        "sum_over_time",
        600000,
        900000,
        [
            (360000, "{{count:5 sum:6 buckets:[2 2 1]}}"),
            (420000, "{{count:8 sum:8 counter_reset_hint:not_reset buckets:[3 3 2]}}"),
            (480000, "{{count:11 sum:10 counter_reset_hint:not_reset buckets:[4 4 3]}}"),
            (540000, "{{count:14 sum:12 counter_reset_hint:not_reset buckets:[5 5 4]}}"),
            (600000, "{{count:17 sum:14 counter_reset_hint:not_reset buckets:[6 6 5]}}"),
            (660000, "{{count:4 sum:4 buckets:[1 2 1]}}"),
            (720000, "{{count:7 sum:6 counter_reset_hint:not_reset buckets:[2 3 2]}}"),
            (780000, "{{count:10 sum:8 counter_reset_hint:not_reset buckets:[3 4 3]}}"),
            (840000, "{{count:13 sum:10 counter_reset_hint:not_reset buckets:[4 5 4]}}"),
            (900000, "{{count:16 sum:12 counter_reset_hint:not_reset buckets:[5 6 5]}}"),
        ],
        "",
        "{{count:105 sum:90 counter_reset_hint:unknown buckets:[35 40 30]}}",
    ),
    (
        "native_histograms.test:1850",
        "avg_over_time",
        600000,
        900000,
        [
            (360000, "{{count:5 sum:6 buckets:[2 2 1]}}"),
            (420000, "{{count:8 sum:8 counter_reset_hint:not_reset buckets:[3 3 2]}}"),
            (480000, "{{count:11 sum:10 counter_reset_hint:not_reset buckets:[4 4 3]}}"),
            (540000, "{{count:14 sum:12 counter_reset_hint:not_reset buckets:[5 5 4]}}"),
            (600000, "{{count:17 sum:14 counter_reset_hint:not_reset buckets:[6 6 5]}}"),
            (660000, "{{count:4 sum:4 buckets:[1 2 1]}}"),
            (720000, "{{count:7 sum:6 counter_reset_hint:not_reset buckets:[2 3 2]}}"),
            (780000, "{{count:10 sum:8 counter_reset_hint:not_reset buckets:[3 4 3]}}"),
            (840000, "{{count:13 sum:10 counter_reset_hint:not_reset buckets:[4 5 4]}}"),
            (900000, "{{count:16 sum:12 counter_reset_hint:not_reset buckets:[5 6 5]}}"),
        ],
        "",
        "{{count:10.5 sum:9 counter_reset_hint:unknown buckets:[3.5 4 3]}}",
    ),
    (
        "native_histograms.test:1870",
        "sum_over_time",
        600000,
        840000,
        [
            (300000, "{{count:4 sum:4 counter_reset_hint:gauge buckets:[1 2 1]}}"),
            (360000, "{{count:5 sum:6 buckets:[2 2 1]}}"),
            (420000, "{{count:8 sum:8 counter_reset_hint:not_reset buckets:[3 3 2]}}"),
            (480000, "{{count:11 sum:10 counter_reset_hint:not_reset buckets:[4 4 3]}}"),
            (540000, "{{count:14 sum:12 counter_reset_hint:not_reset buckets:[5 5 4]}}"),
            (600000, "{{count:17 sum:14 counter_reset_hint:not_reset buckets:[6 6 5]}}"),
            (660000, "{{count:4 sum:4 buckets:[1 2 1]}}"),
            (720000, "{{count:7 sum:6 counter_reset_hint:not_reset buckets:[2 3 2]}}"),
            (780000, "{{count:10 sum:8 counter_reset_hint:not_reset buckets:[3 4 3]}}"),
            (840000, "{{count:13 sum:10 counter_reset_hint:not_reset buckets:[4 5 4]}}"),
        ],
        "count",
        "93",
    ),
    (
        "native_histograms.test:1875",
        "avg_over_time",
        600000,
        840000,
        [
            (300000, "{{count:4 sum:4 counter_reset_hint:gauge buckets:[1 2 1]}}"),
            (360000, "{{count:5 sum:6 buckets:[2 2 1]}}"),
            (420000, "{{count:8 sum:8 counter_reset_hint:not_reset buckets:[3 3 2]}}"),
            (480000, "{{count:11 sum:10 counter_reset_hint:not_reset buckets:[4 4 3]}}"),
            (540000, "{{count:14 sum:12 counter_reset_hint:not_reset buckets:[5 5 4]}}"),
            (600000, "{{count:17 sum:14 counter_reset_hint:not_reset buckets:[6 6 5]}}"),
            (660000, "{{count:4 sum:4 buckets:[1 2 1]}}"),
            (720000, "{{count:7 sum:6 counter_reset_hint:not_reset buckets:[2 3 2]}}"),
            (780000, "{{count:10 sum:8 counter_reset_hint:not_reset buckets:[3 4 3]}}"),
            (840000, "{{count:13 sum:10 counter_reset_hint:not_reset buckets:[4 5 4]}}"),
        ],
        "count",
        "9.3",
    ),
    (
        "native_histograms.test:1883",
        "sum_over_time",
        120000,
        660000,
        [
            (600000, "{{count:17 sum:14 counter_reset_hint:not_reset buckets:[6 6 5]}}"),
            (660000, "{{count:4 sum:4 buckets:[1 2 1]}}"),
        ],
        "count",
        "21",
    ),
    (
        "native_histograms.test:1888",
        "avg_over_time",
        120000,
        660000,
        [
            (600000, "{{count:17 sum:14 counter_reset_hint:not_reset buckets:[6 6 5]}}"),
            (660000, "{{count:4 sum:4 buckets:[1 2 1]}}"),
        ],
        "count",
        "10.5",
    ),
    (
        "native_histograms.test:1949",
        "sum_over_time",
        300000,
        300000,
        [
            (60000, "{{count:2 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (120000, "{{count:3 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (180000, "{{count:2 sum:1 buckets:[1 1 1]}}"),
        ],
        "count",
        "7",
    ),
    (
        "native_histograms.test:1971",
        "rate",
        300000,
        300000,
        [
            (60000, "{{count:2 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (120000, "{{count:3 sum:1 counter_reset_hint:not_reset buckets:[1 1 1]}}"),
            (180000, "{{count:2 sum:1 buckets:[1 1 1]}}"),
        ],
        "count",
        "0.0175",
    ),
]


def H(text: str) -> FloatHistogram:
    return parse_histogram(text).histogram


def _extrapolated(
    fn: str, delta: FloatHistogram, first: FloatHistogram, ts: list[int], rng: int, t: int
) -> FloatHistogram:
    """The engine's (float-identical) extrapolation of a raw rate/increase/delta result."""
    start, end = t - rng, t
    to_start = (ts[0] - start) / 1000
    to_end = (end - ts[-1]) / 1000
    sampled = (ts[-1] - ts[0]) / 1000
    avg = sampled / (len(ts) - 1)
    if to_start >= avg * 1.1:
        to_start = avg / 2
    if fn != "delta" and delta.count > 0 and first.count >= 0:
        to_start = min(to_start, sampled * (first.count / delta.count))
    if to_end >= avg * 1.1:
        to_end = avg / 2
    factor = (sampled + to_start + to_end) / sampled
    if fn == "rate":
        factor /= rng / 1000
    return delta.mul(factor)


def _evaluate(
    fn: str, rng: int, t: int, points: list[FloatHistogram], ts: list[int]
) -> FloatHistogram | None:
    if fn in ("rate", "increase", "delta"):
        d, _ = rate_delta(points, fn != "delta")
        return None if d is None else _extrapolated(fn, d, points[0], ts, rng, t)
    if fn in ("irate", "idelta"):
        d, _ = instant_delta(points[-2], points[-1], fn == "irate")
        if d is None or fn == "idelta":
            return d
        return d.div((ts[-1] - ts[-2]) / 1000)
    if fn == "sum_over_time":
        return sum_over_time(points)[0]
    assert fn == "avg_over_time"
    return avg_over_time(points)[0]


@pytest.mark.parametrize(
    ("where", "fn", "rng", "t", "window", "wrap", "expected"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_conformance_expectations(
    where: str, fn: str, rng: int, t: int, window: list[tuple[int, str]], wrap: str, expected: str
) -> None:
    parsed = [parse_histogram(lit).histogram for _, lit in window]
    got = _evaluate(fn, rng, t, parsed, [ts for ts, _ in window])
    assert got is not None, where
    if wrap:
        value = got.count if wrap == "count" else got.sum
        assert almost_equal(float(expected.replace("Inf", "inf")), value), f"{where}: {value} != {expected}"
    else:
        p = parse_histogram(expected)
        assert promqltest_equal(p.histogram, got, p.counter_reset_hint_set), f"{where}: {got!r} != {expected}"


def test_rate_delta_compensates_resets() -> None:
    pts = [
        H("{{count:4 sum:4 buckets:[4]}}"),
        H("{{count:6 sum:6 buckets:[6]}}"),
        H("{{count:1 sum:1 buckets:[1]}}"),
        H("{{count:3 sum:3 buckets:[3]}}"),
    ]
    d, notes = rate_delta(pts, True)
    assert d is not None and not notes
    # 6-4 before the reset, then 3 after it from zero.
    assert promqltest_equal(H("{{count:5 sum:5 buckets:[5] counter_reset_hint:gauge}}"), d, True)
    # delta() ignores resets and warns that the input is not a gauge.
    d2, notes2 = rate_delta(pts, False)
    assert d2 is not None and d2.count == -1 and notes2 == {Note.NOT_GAUGE}


def test_rate_delta_reset_right_after_first_point() -> None:
    # The first point is ignored (its layout too): the window starts from an empty histogram.
    pts = [
        H("{{schema:2 count:9 sum:9 buckets:[9]}}"),
        H("{{schema:0 count:1 sum:1 buckets:[1]}}"),
        H("{{schema:0 count:2 sum:2 buckets:[2]}}"),
    ]
    d, _ = rate_delta(pts, True)
    assert d is not None and d.schema == 0
    assert promqltest_equal(H("{{count:2 sum:2 buckets:[2]}}"), d, False)


def test_rate_delta_schema_and_notes() -> None:
    pts = [
        H("{{schema:1 count:1 sum:1 buckets:[1]}}"),
        H("{{schema:0 count:2 sum:2 buckets:[2]}}"),
        H("{{schema:1 count:3 sum:3 buckets:[3]}}"),
    ]
    d, notes = rate_delta(pts, True)
    # The lowest schema wins; going back to a finer schema counts as a reset: (3 - 1) + 2.
    assert d is not None and d.schema == 0 and d.count == 4 and not notes
    g = [h.with_hint(CounterResetHint.GAUGE) for h in pts]
    assert rate_delta(g, True)[1] == {Note.NOT_COUNTER}
    assert rate_delta(g, False)[1] == set()
    nhcb = H("{{schema:-53 count:2 custom_values:[1] buckets:[2]}}")
    exp = H("{{count:1 buckets:[1]}}")
    # A switch to custom buckets right after the first point is a reset: the first is ignored.
    d, notes = rate_delta([exp, nhcb], True)
    assert d is not None and d.count == 2 and not notes
    assert rate_delta([exp, nhcb], False) == (None, {Note.MIXED_EXPONENTIAL_CUSTOM})
    assert rate_delta([nhcb, exp, nhcb], True) == (None, {Note.MIXED_EXPONENTIAL_CUSTOM})
    with pytest.raises(ValueError):
        rate_delta(pts[:1], True)


def test_rate_delta_nhcb_reconciled() -> None:
    pts = [
        H("{{schema:-53 count:1 sum:1 custom_values:[5] buckets:[1]}}"),
        H("{{schema:-53 count:2 sum:2 custom_values:[5 10] buckets:[2]}}"),
    ]
    d, notes = rate_delta(pts, False)
    assert d is not None and Note.NHCB_RECONCILED_SUB in notes
    assert d.custom_values is not None and d.custom_values.tolist() == [5.0]


def test_rate_delta_start_timestamps() -> None:
    pts = [
        H("{{count:5 sum:5 buckets:[5]}}"),
        H("{{count:6 sum:6 buckets:[6]}}"),
        H("{{count:7 sum:7 buckets:[7]}}"),
    ]
    ts = [10_000, 20_000, 30_000]
    # The third sample started after the second one: a reset the counts do not show.
    d, notes = rate_delta(pts, True, ts, [1_000, 1_000, 25_000])
    assert d is not None and d.count == 2 + 6 and not notes
    d, notes = rate_delta(pts, True, ts, [1_000, 1_000, 1_000])
    assert d is not None and d.count == 2
    _, notes = rate_delta(pts, True, ts, [1_000, 5_000, 5_000])
    assert notes == {Note.START_TIME_OVERLAP}


def test_start_timestamp_helpers() -> None:
    assert is_start_timestamp_reset(0, 10, 15, 20)
    assert not is_start_timestamp_reset(0, 10, 0, 20)  # unknown
    assert not is_start_timestamp_reset(0, 10, 20, 20)  # ST == T
    assert not is_start_timestamp_reset(0, 10, 5, 20)  # cumulative, older start
    assert is_start_timestamp_reset(5, 10, 10, 20)  # delta-style
    assert not is_start_timestamp_reset(10, 10, 10, 20)
    assert start_time_overlap(0, 10, 5) and not start_time_overlap(5, 10, 5)


def test_instant_delta() -> None:
    a, b = H("{{count:4 sum:4 buckets:[4]}}"), H("{{count:6 sum:6 buckets:[6]}}")
    d, notes = instant_delta(a, b, True)
    assert d is not None and d.count == 2 and d.counter_reset_hint == CounterResetHint.GAUGE and not notes
    r, _ = instant_delta(b, a, True)  # reset: irate uses the last histogram itself
    assert r is not None and r.count == 4
    _, notes = instant_delta(a, b, False)
    assert notes == {Note.NOT_GAUGE}


def test_sum_and_avg_over_time() -> None:
    pts = [
        H("{{count:1 sum:1e100 buckets:[1]}}"),
        H("{{count:1 sum:1 buckets:[1]}}"),
        H("{{count:1 sum:-1e100 buckets:[1]}}"),
    ]
    s, notes = sum_over_time(pts)
    assert s is not None and s.sum == 1 and s.count == 3 and not notes
    a, _ = avg_over_time(pts)
    assert a is not None and a.count == 1 and a.sum == pytest.approx(1 / 3)
    hints = [pts[0].with_hint(CounterResetHint.RESET), pts[1].with_hint(CounterResetHint.NOT_RESET)]
    assert sum_over_time(hints)[1] == {Note.COUNTER_RESET_COLLISION_AGG}
    mixed = [pts[0], H("{{schema:-53 count:1 buckets:[1]}}")]
    assert sum_over_time(mixed) == (None, {Note.MIXED_EXPONENTIAL_CUSTOM})
    assert avg_over_time(mixed) == (None, {Note.MIXED_EXPONENTIAL_CUSTOM})


def test_avg_over_time_switches_to_incremental_mean_on_overflow() -> None:
    big = 1.5e308
    pts = [FloatHistogram.build(count=big, sum=big, positive={0: big}) for _ in range(3)]
    a, _ = avg_over_time(pts)
    assert a is not None
    assert a.count == pytest.approx(big) and math.isfinite(a.sum)
    assert a.positive[0] == pytest.approx(big)
