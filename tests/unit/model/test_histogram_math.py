"""Histogram function math checked against Prometheus' own expectations.

``CASES`` are the ``eval`` lines of ../shared/conformance/promqltest (Prometheus' test files,
Apache-2.0) that apply histogram_count/sum/avg/stddev/stdvar/quantile/fraction directly to a
loaded literal: the input histogram (the loaded point at the eval time, in literal syntax), the
function, its scalar arguments and the expected value, with the file:line of the eval.
"""

from __future__ import annotations

import math

import pytest

from clearsight.model.histogram import CUSTOM_BUCKETS_SCHEMA, FloatHistogram
from clearsight.model.histogram_math import (
    ClassicHistogramBuilder,
    HistInfo,
    NHCBConversionError,
    classic_to_nhcb,
    histogram_avg,
    histogram_base_name,
    histogram_count,
    histogram_fraction,
    histogram_quantile,
    histogram_stddev,
    histogram_stdvar,
    histogram_sum,
    nhcb_series_from_classic,
    trim_buckets,
)
from clearsight.model.histogram_text import almost_equal, parse_histogram, promqltest_equal

CASES: list[tuple[str, str, list[str], str, str]] = [
    ("native_histograms.test:12", "count", [], "{{}}", "0"),
    ("native_histograms.test:12", "count", [], "{{schema:-53 custom_values:[-2 3]}}", "0"),
    ("native_histograms.test:16", "sum", [], "{{}}", "0"),
    ("native_histograms.test:16", "sum", [], "{{schema:-53 custom_values:[-2 3]}}", "0"),
    ("native_histograms.test:20", "avg", [], "{{}}", "NaN"),
    ("native_histograms.test:20", "avg", [], "{{schema:-53 custom_values:[-2 3]}}", "NaN"),
    ("native_histograms.test:24", "fraction", ["-Inf", "+Inf"], "{{}}", "NaN"),
    ("native_histograms.test:24", "fraction", ["-Inf", "+Inf"], "{{schema:-53 custom_values:[-2 3]}}", "NaN"),
    ("native_histograms.test:28", "fraction", ["0", "8"], "{{}}", "NaN"),
    ("native_histograms.test:28", "fraction", ["0", "8"], "{{schema:-53 custom_values:[-2 3]}}", "NaN"),
    ("native_histograms.test:38", "count", [], "{{count:4 sum:5 buckets:[1 2 1]}}", "4"),
    ("native_histograms.test:42", "sum", [], "{{count:4 sum:5 buckets:[1 2 1]}}", "5"),
    ("native_histograms.test:46", "avg", [], "{{count:4 sum:5 buckets:[1 2 1]}}", "1.25"),
    ("native_histograms.test:50", "fraction", ["1", "2"], "{{count:4 sum:5 buckets:[1 2 1]}}", "0.5"),
    ("native_histograms.test:55", "fraction", ["0", "8"], "{{count:4 sum:5 buckets:[1 2 1]}}", "1"),
    (
        "native_histograms.test:63",
        "quantile",
        ["0.5"],
        "{{count:4 sum:5 buckets:[1 2 1]}}",
        "1.414213562373095",
    ),
    ("native_histograms.test:118", "count", [], "{{count:5 sum:6 buckets:[1 3 1]}}", "5"),
    ("native_histograms.test:121", "sum", [], "{{count:5 sum:6 buckets:[1 3 1]}}", "6"),
    ("native_histograms.test:124", "avg", [], "{{count:5 sum:6 buckets:[1 3 1]}}", "1.2"),
    ("native_histograms.test:128", "fraction", ["1", "2"], "{{count:5 sum:6 buckets:[1 3 1]}}", "0.6"),
    (
        "native_histograms.test:132",
        "quantile",
        ["0.5"],
        "{{count:5 sum:6 buckets:[1 3 1]}}",
        "1.414213562373095",
    ),
    ("native_histograms.test:139", "count", [], "{{count:14 sum:24 buckets:[1 12 1]}}", "14"),
    ("native_histograms.test:142", "sum", [], "{{count:14 sum:24 buckets:[1 12 1]}}", "24"),
    ("native_histograms.test:145", "avg", [], "{{count:14 sum:24 buckets:[1 12 1]}}", "1.7142857142857142"),
    (
        "native_histograms.test:149",
        "fraction",
        ["1", "2"],
        "{{count:14 sum:24 buckets:[1 12 1]}}",
        "0.8571428571428571",
    ),
    (
        "native_histograms.test:153",
        "quantile",
        ["0.5"],
        "{{count:14 sum:24 buckets:[1 12 1]}}",
        "1.414213562373095",
    ),
    ("native_histograms.test:180", "count", [], "{{schema:-1 count:5 sum:8 offset:1 buckets:[5]}}", "5"),
    ("native_histograms.test:183", "sum", [], "{{schema:-1 count:5 sum:8 offset:1 buckets:[5]}}", "8"),
    ("native_histograms.test:186", "avg", [], "{{schema:-1 count:5 sum:8 offset:1 buckets:[5]}}", "1.6"),
    (
        "native_histograms.test:190",
        "fraction",
        ["1", "4"],
        "{{schema:-1 count:5 sum:8 offset:1 buckets:[5]}}",
        "1",
    ),
    ("native_histograms.test:200", "count", [], "{{count:1 sum:0.25 z_bucket:1 z_bucket_w:0.5}}", "1"),
    ("native_histograms.test:203", "sum", [], "{{count:1 sum:0.25 z_bucket:1 z_bucket_w:0.5}}", "0.25"),
    ("native_histograms.test:206", "avg", [], "{{count:1 sum:0.25 z_bucket:1 z_bucket_w:0.5}}", "0.25"),
    (
        "native_histograms.test:212",
        "fraction",
        ["-0.5", "0.5"],
        "{{count:1 sum:0.25 z_bucket:1 z_bucket_w:0.5}}",
        "1",
    ),
    (
        "native_histograms.test:216",
        "quantile",
        ["0.5"],
        "{{count:1 sum:0.25 z_bucket:1 z_bucket_w:0.5}}",
        "0",
    ),
    ("native_histograms.test:225", "count", [], "{{count:4 sum:-5 n_buckets:[1 2 1]}}", "4"),
    ("native_histograms.test:228", "sum", [], "{{count:4 sum:-5 n_buckets:[1 2 1]}}", "-5"),
    ("native_histograms.test:231", "avg", [], "{{count:4 sum:-5 n_buckets:[1 2 1]}}", "-1.25"),
    ("native_histograms.test:235", "fraction", ["-2", "-1"], "{{count:4 sum:-5 n_buckets:[1 2 1]}}", "0.5"),
    (
        "native_histograms.test:239",
        "quantile",
        ["0.5"],
        "{{count:4 sum:-5 n_buckets:[1 2 1]}}",
        "-1.414213562373095",
    ),
    ("native_histograms.test:249", "count", [], "{{count:4 sum:-4 n_buckets:[1 2 1]}}", "4"),
    ("native_histograms.test:252", "sum", [], "{{count:4 sum:-4 n_buckets:[1 2 1]}}", "-4"),
    ("native_histograms.test:255", "avg", [], "{{count:4 sum:-4 n_buckets:[1 2 1]}}", "-1"),
    ("native_histograms.test:258", "fraction", ["-2", "-1"], "{{count:4 sum:-4 n_buckets:[1 2 1]}}", "0.5"),
    (
        "native_histograms.test:262",
        "quantile",
        ["0.5"],
        "{{count:4 sum:-4 n_buckets:[1 2 1]}}",
        "-1.414213562373095",
    ),
    ("native_histograms.test:271", "count", [], "{{count:8 buckets:[1 2 1] n_buckets:[1 2 1]}}", "8"),
    ("native_histograms.test:274", "sum", [], "{{count:8 buckets:[1 2 1] n_buckets:[1 2 1]}}", "0"),
    ("native_histograms.test:277", "avg", [], "{{count:8 buckets:[1 2 1] n_buckets:[1 2 1]}}", "0"),
    (
        "native_histograms.test:280",
        "fraction",
        ["0", "4"],
        "{{count:8 buckets:[1 2 1] n_buckets:[1 2 1]}}",
        "0.5",
    ),
    (
        "native_histograms.test:285",
        "quantile",
        ["0.5"],
        "{{count:8 buckets:[1 2 1] n_buckets:[1 2 1]}}",
        "0.5",
    ),
    (
        "native_histograms.test:321",
        "count",
        [],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "24",
    ),
    (
        "native_histograms.test:324",
        "sum",
        [],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "100",
    ),
    (
        "native_histograms.test:333",
        "stddev",
        [],
        "{{schema:2 count:4 sum:10 buckets:[1 0 0 0 1 0 0 1 1]}}",
        "1.0787993180043811",
    ),
    (
        "native_histograms.test:336",
        "stdvar",
        [],
        "{{schema:2 count:4 sum:10 buckets:[1 0 0 0 1 0 0 1 1]}}",
        "1.163807968526718",
    ),
    (
        "native_histograms.test:345",
        "stddev",
        [],
        "{{schema:8 count:10 sum:10 buckets:[1 2 3 4]}}",
        "0.0048960313898237465",
    ),
    (
        "native_histograms.test:348",
        "stdvar",
        [],
        "{{schema:8 count:10 sum:10 buckets:[1 2 3 4]}}",
        "2.3971123370139447e-05",
    ),
    (
        "native_histograms.test:357",
        "stddev",
        [],
        "{{schema:3 count:7 sum:62 z_bucket:1 offset:13 buckets:[1 0 0 0 0 0 0 0 0 0 0 1 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] n_offset:24 n_buckets:[1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1]}}",
        "42.94723640026",
    ),
    (
        "native_histograms.test:360",
        "stdvar",
        [],
        "{{schema:3 count:7 sum:62 z_bucket:1 offset:13 buckets:[1 0 0 0 0 0 0 0 0 0 0 1 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] n_offset:24 n_buckets:[1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1]}}",
        "1844.4651144196398",
    ),
    (
        "native_histograms.test:369",
        "stddev",
        [],
        "{{count:10 sum:-112946 n_offset:2 n_buckets:[1 1 1 0 1 1 0 0 3 0 0 0 1 0 0 1]}}",
        "27556.344499842",
    ),
    (
        "native_histograms.test:372",
        "stdvar",
        [],
        "{{count:10 sum:-112946 n_offset:2 n_buckets:[1 1 1 0 1 1 0 0 3 0 0 0 1 0 0 1]}}",
        "759352122.1939945",
    ),
    (
        "native_histograms.test:381",
        "stddev",
        [],
        "{{count:10 sum:-100 n_offset:4 n_buckets:[10]}}",
        "1.3137084989848",
    ),
    (
        "native_histograms.test:384",
        "stdvar",
        [],
        "{{count:10 sum:-100 n_offset:4 n_buckets:[10]}}",
        "1.725830020304794",
    ),
    (
        "native_histograms.test:393",
        "stddev",
        [],
        "{{schema:3 count:7 sum:NaN z_bucket:1 offset:13 buckets:[1 0 0 0 0 0 0 0 0 0 0 1 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] n_offset:24 n_buckets:[1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1]}}",
        "NaN",
    ),
    (
        "native_histograms.test:396",
        "stdvar",
        [],
        "{{schema:3 count:7 sum:NaN z_bucket:1 offset:13 buckets:[1 0 0 0 0 0 0 0 0 0 0 1 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] n_offset:24 n_buckets:[1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1]}}",
        "NaN",
    ),
    (
        "native_histograms.test:405",
        "stddev",
        [],
        "{{schema:3 count:7 sum:+Inf z_bucket:1 offset:13 buckets:[1 0 0 0 0 0 0 0 0 0 0 1 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] n_offset:24 n_buckets:[1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1]}}",
        "Inf",
    ),
    (
        "native_histograms.test:408",
        "stdvar",
        [],
        "{{schema:3 count:7 sum:+Inf z_bucket:1 offset:13 buckets:[1 0 0 0 0 0 0 0 0 0 0 1 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] n_offset:24 n_buckets:[1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1]}}",
        "Inf",
    ),
    (
        "native_histograms.test:418",
        "quantile",
        ["1.001"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "Inf",
    ),
    (
        "native_histograms.test:422",
        "quantile",
        ["1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "16",
    ),
    (
        "native_histograms.test:429",
        "quantile",
        ["0.99"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "15.67072476139083",
    ),
    (
        "native_histograms.test:433",
        "quantile",
        ["0.9"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "12.99603834169977",
    ),
    (
        "native_histograms.test:437",
        "quantile",
        ["0.6"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "4.594793419988138",
    ),
    (
        "native_histograms.test:441",
        "quantile",
        ["0.5"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "1.5874010519681994",
    ),
    (
        "native_histograms.test:446",
        "quantile",
        ["0.1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.0006",
    ),
    (
        "native_histograms.test:450",
        "quantile",
        ["0"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:454",
        "quantile",
        ["-1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "-Inf",
    ),
    (
        "native_histograms.test:464",
        "quantile",
        ["1.001"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "Inf",
    ),
    (
        "native_histograms.test:468",
        "quantile",
        ["1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:475",
        "quantile",
        ["0.99"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "-0.00006",
    ),
    (
        "native_histograms.test:479",
        "quantile",
        ["0.9"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "-0.0006",
    ),
    (
        "native_histograms.test:483",
        "quantile",
        ["0.5"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "-1.5874010519681996",
    ),
    (
        "native_histograms.test:487",
        "quantile",
        ["0.1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "-12.996038341699768",
    ),
    (
        "native_histograms.test:491",
        "quantile",
        ["0"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "-16",
    ),
    (
        "native_histograms.test:495",
        "quantile",
        ["-1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "-Inf",
    ),
    (
        "native_histograms.test:507",
        "quantile",
        ["1.001"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "Inf",
    ),
    (
        "native_histograms.test:511",
        "quantile",
        ["1"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "16",
    ),
    (
        "native_histograms.test:515",
        "quantile",
        ["0.99"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "15.34822590920423",
    ),
    (
        "native_histograms.test:519",
        "quantile",
        ["0.9"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "10.556063286183155",
    ),
    (
        "native_histograms.test:523",
        "quantile",
        ["0.7"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "1.2030250360821164",
    ),
    (
        "native_histograms.test:529",
        "quantile",
        ["0.55"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.0006",
    ),
    (
        "native_histograms.test:533",
        "quantile",
        ["0.5"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:537",
        "quantile",
        ["0.45"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "-0.0006",
    ),
    (
        "native_histograms.test:542",
        "quantile",
        ["0.3"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "-1.2030250360821169",
    ),
    (
        "native_histograms.test:546",
        "quantile",
        ["0.1"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "-10.556063286183155",
    ),
    (
        "native_histograms.test:550",
        "quantile",
        ["0.01"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "-15.34822590920423",
    ),
    (
        "native_histograms.test:554",
        "quantile",
        ["0"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "-16",
    ),
    (
        "native_histograms.test:558",
        "quantile",
        ["-1"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "-Inf",
    ),
    (
        "native_histograms.test:572",
        "quantile",
        ["0.5"],
        "{{schema:-1 count:5 sum:6 offset:1 buckets:[5]}}",
        "2.0",
    ),
    (
        "native_histograms.test:572",
        "quantile",
        ["0.5"],
        "{{count:5 sum:4 offset:1 buckets:[5]}}",
        "1.4142135623730951",
    ),
    (
        "native_histograms.test:572",
        "quantile",
        ["0.5"],
        "{{schema:1 count:5 sum:4 offset:1 buckets:[5]}}",
        "1.189207",
    ),
    (
        "native_histograms.test:593",
        "quantile",
        ["0.5"],
        "{{schema:-1 count:5 sum:6 offset:2 buckets:[5]}}",
        "8.0",
    ),
    (
        "native_histograms.test:593",
        "quantile",
        ["0.5"],
        "{{count:5 sum:4 offset:2 buckets:[5]}}",
        "2.82842712474619",
    ),
    (
        "native_histograms.test:593",
        "quantile",
        ["0.5"],
        "{{schema:1 count:5 sum:4 offset:2 buckets:[5]}}",
        "1.6817928305074292",
    ),
    (
        "native_histograms.test:614",
        "quantile",
        ["0.5"],
        "{{schema:-1 count:5 sum:6 n_offset:1 n_buckets:[5]}}",
        "-2.0",
    ),
    (
        "native_histograms.test:614",
        "quantile",
        ["0.5"],
        "{{count:5 sum:4 n_offset:1 n_buckets:[5]}}",
        "-1.4142135623730951",
    ),
    (
        "native_histograms.test:614",
        "quantile",
        ["0.5"],
        "{{schema:1 count:5 sum:4 n_offset:1 n_buckets:[5]}}",
        "-1.189207",
    ),
    (
        "native_histograms.test:634",
        "quantile",
        ["0.5"],
        "{{schema:-1 count:5 sum:6 n_offset:2 n_buckets:[5]}}",
        "-8.0",
    ),
    (
        "native_histograms.test:634",
        "quantile",
        ["0.5"],
        "{{count:5 sum:4 n_offset:2 n_buckets:[5]}}",
        "-2.82842712474619",
    ),
    (
        "native_histograms.test:634",
        "quantile",
        ["0.5"],
        "{{schema:1 count:5 sum:4 n_offset:2 n_buckets:[5]}}",
        "-1.6817928305074292",
    ),
    ("native_histograms.test:651", "fraction", ["3.1415", "42"], "{{}}", "NaN"),
    (
        "native_histograms.test:660",
        "fraction",
        ["0", "+Inf"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "1",
    ),
    (
        "native_histograms.test:663",
        "fraction",
        ["-Inf", "0"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:666",
        "fraction",
        ["-0.001", "0"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:669",
        "fraction",
        ["0", "0.001"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.16666666666666666",
    ),
    (
        "native_histograms.test:673",
        "fraction",
        ["0.001", "inf"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.8333333333333334",
    ),
    (
        "native_histograms.test:677",
        "fraction",
        ["0", "0.0005"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.08333333333333333",
    ),
    (
        "native_histograms.test:682",
        "quantile",
        ["0.08333333333333333"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.0005",
    ),
    (
        "native_histograms.test:685",
        "fraction",
        ["-inf", "-0.001"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:688",
        "fraction",
        ["1", "2"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.25",
    ),
    (
        "native_histograms.test:695",
        "fraction",
        ["0", "1.5"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.4795739585136224",
    ),
    (
        "native_histograms.test:698",
        "fraction",
        ["1.5", "2"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.10375937481971091",
    ),
    (
        "native_histograms.test:701",
        "fraction",
        ["1", "8"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.3333333333333333",
    ),
    (
        "native_histograms.test:704",
        "fraction",
        ["0", "6"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.6320802083934297",
    ),
    (
        "native_histograms.test:707",
        "quantile",
        ["0.6320802083934297"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "6",
    ),
    (
        "native_histograms.test:710",
        "fraction",
        ["1", "6"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.29874687506009634",
    ),
    (
        "native_histograms.test:713",
        "fraction",
        ["1.5", "6"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0.15250624987980724",
    ),
    (
        "native_histograms.test:716",
        "fraction",
        ["-2", "-1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:719",
        "fraction",
        ["-2", "-1.5"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:722",
        "fraction",
        ["-8", "-1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:725",
        "fraction",
        ["-6", "-1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:728",
        "fraction",
        ["-6", "-1.5"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:731",
        "fraction",
        ["42", "3.1415"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:734",
        "fraction",
        ["0", "0"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:737",
        "fraction",
        ["0.000001", "0.000001"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:740",
        "fraction",
        ["42", "42"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:743",
        "fraction",
        ["-3.1", "-3.1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:746",
        "fraction",
        ["3.1415", "NaN"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "NaN",
    ),
    (
        "native_histograms.test:749",
        "fraction",
        ["NaN", "42"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "NaN",
    ),
    (
        "native_histograms.test:752",
        "fraction",
        ["NaN", "NaN"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "NaN",
    ),
    (
        "native_histograms.test:755",
        "fraction",
        ["-Inf", "+Inf"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}",
        "1",
    ),
    (
        "native_histograms.test:762",
        "fraction",
        ["0", "+Inf"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:765",
        "fraction",
        ["-Inf", "0"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "1",
    ),
    (
        "native_histograms.test:768",
        "fraction",
        ["-0.001", "0"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0.16666666666666666",
    ),
    (
        "native_histograms.test:771",
        "fraction",
        ["0", "0.001"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:774",
        "fraction",
        ["-0.0005", "0"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0.08333333333333333",
    ),
    (
        "native_histograms.test:777",
        "fraction",
        ["-inf", "-0.0005"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0.9166666666666666",
    ),
    (
        "native_histograms.test:780",
        "quantile",
        ["0.9166666666666666"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "-0.0005",
    ),
    (
        "native_histograms.test:783",
        "fraction",
        ["0.001", "inf"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:786",
        "fraction",
        ["-inf", "-0.001"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0.8333333333333334",
    ),
    (
        "native_histograms.test:789",
        "fraction",
        ["1", "2"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:792",
        "fraction",
        ["1.5", "2"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:795",
        "fraction",
        ["1", "8"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:798",
        "fraction",
        ["1", "6"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:801",
        "fraction",
        ["1.5", "6"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:804",
        "fraction",
        ["-2", "-1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0.25",
    ),
    (
        "native_histograms.test:807",
        "fraction",
        ["-2", "-1.5"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0.10375937481971091",
    ),
    (
        "native_histograms.test:810",
        "fraction",
        ["-8", "-1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0.3333333333333333",
    ),
    (
        "native_histograms.test:813",
        "fraction",
        ["-inf", "-6"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0.36791979160657035",
    ),
    (
        "native_histograms.test:816",
        "quantile",
        ["0.36791979160657035"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "-6",
    ),
    (
        "native_histograms.test:819",
        "fraction",
        ["-6", "-1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0.29874687506009634",
    ),
    (
        "native_histograms.test:822",
        "fraction",
        ["-6", "-1.5"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0.15250624987980724",
    ),
    (
        "native_histograms.test:825",
        "fraction",
        ["42", "3.1415"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:828",
        "fraction",
        ["0", "0"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:831",
        "fraction",
        ["0.000001", "0.000001"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:834",
        "fraction",
        ["42", "42"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:837",
        "fraction",
        ["-3.1", "-3.1"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:840",
        "fraction",
        ["3.1415", "NaN"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "NaN",
    ),
    (
        "native_histograms.test:843",
        "fraction",
        ["NaN", "42"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "NaN",
    ),
    (
        "native_histograms.test:846",
        "fraction",
        ["NaN", "NaN"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "NaN",
    ),
    (
        "native_histograms.test:849",
        "fraction",
        ["-Inf", "+Inf"],
        "{{count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}",
        "1",
    ),
    (
        "native_histograms.test:858",
        "fraction",
        ["0", "+Inf"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.5",
    ),
    (
        "native_histograms.test:861",
        "fraction",
        ["-Inf", "0"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.5",
    ),
    (
        "native_histograms.test:864",
        "fraction",
        ["-0.001", "0"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.08333333333333333",
    ),
    (
        "native_histograms.test:867",
        "fraction",
        ["0", "0.001"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.08333333333333333",
    ),
    (
        "native_histograms.test:870",
        "fraction",
        ["-0.0005", "0.0005"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.08333333333333333",
    ),
    (
        "native_histograms.test:873",
        "fraction",
        ["-inf", "0.0005"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.5416666666666666",
    ),
    (
        "native_histograms.test:876",
        "quantile",
        ["0.5416666666666666"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.0005",
    ),
    (
        "native_histograms.test:879",
        "fraction",
        ["-inf", "-0.0005"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.4583333333333333",
    ),
    (
        "native_histograms.test:882",
        "quantile",
        ["0.4583333333333333"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "-0.0005",
    ),
    (
        "native_histograms.test:885",
        "fraction",
        ["0.001", "inf"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.4166666666666667",
    ),
    (
        "native_histograms.test:888",
        "fraction",
        ["-inf", "-0.001"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.4166666666666667",
    ),
    (
        "native_histograms.test:891",
        "fraction",
        ["1", "2"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.125",
    ),
    (
        "native_histograms.test:894",
        "fraction",
        ["1.5", "2"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.051879687409855414",
    ),
    (
        "native_histograms.test:897",
        "fraction",
        ["1", "8"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.16666666666666666",
    ),
    (
        "native_histograms.test:900",
        "fraction",
        ["1", "6"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.14937343753004825",
    ),
    (
        "native_histograms.test:903",
        "fraction",
        ["1.5", "6"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.07625312493990366",
    ),
    (
        "native_histograms.test:906",
        "fraction",
        ["-2", "-1"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.125",
    ),
    (
        "native_histograms.test:909",
        "fraction",
        ["-2", "-1.5"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.051879687409855456",
    ),
    (
        "native_histograms.test:912",
        "fraction",
        ["-8", "-1"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.16666666666666666",
    ),
    (
        "native_histograms.test:915",
        "fraction",
        ["-6", "-1"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.14937343753004817",
    ),
    (
        "native_histograms.test:918",
        "fraction",
        ["-6", "-1.5"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0.07625312493990362",
    ),
    (
        "native_histograms.test:921",
        "fraction",
        ["42", "3.1415"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:924",
        "fraction",
        ["0", "0"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:927",
        "fraction",
        ["0.000001", "0.000001"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:930",
        "fraction",
        ["42", "42"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:933",
        "fraction",
        ["-3.1", "-3.1"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "0",
    ),
    (
        "native_histograms.test:936",
        "fraction",
        ["3.1415", "NaN"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "NaN",
    ),
    (
        "native_histograms.test:939",
        "fraction",
        ["NaN", "42"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "NaN",
    ),
    (
        "native_histograms.test:942",
        "fraction",
        ["NaN", "NaN"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "NaN",
    ),
    (
        "native_histograms.test:945",
        "fraction",
        ["-Inf", "+Inf"],
        "{{count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
        "1",
    ),
    (
        "native_histograms.test:1081",
        "fraction",
        ["5", "10"],
        "{{schema:-53 count:4 sum:5 custom_values:[5 10] buckets:[1 2 1]}}",
        "0.5",
    ),
    (
        "native_histograms.test:1084",
        "quantile",
        ["0.5"],
        "{{schema:-53 count:4 sum:5 custom_values:[5 10] buckets:[1 2 1]}}",
        "7.5",
    ),
    ("native_histograms.test:1619", "quantile", ["1"], "{{count:3 sum:NaN}}", "NaN"),
    ("native_histograms.test:1619", "quantile", ["1"], "{{count:15 sum:NaN buckets:[12]}}", "NaN"),
    ("native_histograms.test:1624", "quantile", ["0.81"], "{{count:3 sum:NaN}}", "NaN"),
    ("native_histograms.test:1624", "quantile", ["0.81"], "{{count:15 sum:NaN buckets:[12]}}", "NaN"),
    ("native_histograms.test:1651", "fraction", ["-Inf", "0.7071067811865475"], "{{count:3 sum:NaN}}", "0.0"),
    (
        "native_histograms.test:1651",
        "fraction",
        ["-Inf", "0.7071067811865475"],
        "{{count:15 sum:NaN buckets:[12]}}",
        "0.4",
    ),
    ("native_histograms.test:1656", "fraction", ["-Inf", "+Inf"], "{{count:3 sum:NaN}}", "0.0"),
    ("native_histograms.test:1656", "fraction", ["-Inf", "+Inf"], "{{count:15 sum:NaN buckets:[12]}}", "0.8"),
]


def _num(s: str) -> float:
    return float(s.replace("Inf", "inf"))


def _apply(fn: str, args: list[float], h: FloatHistogram) -> float:
    if fn == "count":
        return histogram_count(h)
    if fn == "sum":
        return histogram_sum(h)
    if fn == "avg":
        return histogram_avg(h)
    if fn == "stddev":
        return histogram_stddev(h)
    if fn == "stdvar":
        return histogram_stdvar(h)
    if fn == "quantile":
        return histogram_quantile(args[0], h)[0]
    assert fn == "fraction"
    return histogram_fraction(args[0], args[1], h)[0]


@pytest.mark.parametrize(
    ("where", "fn", "args", "literal", "expected"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_conformance_expectations(where: str, fn: str, args: list[str], literal: str, expected: str) -> None:
    h = parse_histogram(literal).histogram
    got = _apply(fn, [_num(a) for a in args], h)
    assert almost_equal(_num(expected), got), (
        f"{where}: histogram_{fn}({args}, {literal}) = {got}, want {expected}"
    )


def H(text: str) -> FloatHistogram:
    return parse_histogram(text).histogram


def test_quantile_edges() -> None:
    h = H("{{schema:0 count:4 sum:5 buckets:[1 2 1]}}")
    assert histogram_quantile(-0.1, h) == (-math.inf, HistInfo.NONE)
    assert histogram_quantile(1.1, h) == (math.inf, HistInfo.NONE)
    assert math.isnan(histogram_quantile(math.nan, h)[0])
    assert math.isnan(histogram_quantile(0.5, H("{{}}"))[0])
    # Exponential interpolation: the median of (1,2] with 2 of 4 observations at its middle.
    assert histogram_quantile(0.5, h)[0] == pytest.approx(math.sqrt(2))
    assert histogram_quantile(1, h)[0] == 4.0
    assert histogram_quantile(0, h)[0] == 0.5


def test_quantile_zero_bucket_sides() -> None:
    # Only positive buckets: the zero bucket is treated as [0, threshold].
    pos = H("{{count:4 z_bucket:2 z_bucket_w:0.5 buckets:[2]}}")
    assert histogram_quantile(0.25, pos)[0] == pytest.approx(0.25)
    # Only negative buckets: [-threshold, 0].
    neg = H("{{count:4 z_bucket:2 z_bucket_w:0.5 n_buckets:[2]}}")
    assert histogram_quantile(0.75, neg)[0] == pytest.approx(-0.25)
    # Both: the full [-threshold, threshold].
    both = H("{{count:4 z_bucket:2 z_bucket_w:0.5 buckets:[1] n_buckets:[1]}}")
    assert histogram_quantile(0.5, both)[0] == pytest.approx(0.0)
    # Empty negative buckets still count as "has negative buckets" unless compacted away.
    empty_neg = FloatHistogram.build(
        count=4, zero_count=2, zero_threshold=0.5, positive={0: 2}, negative={0: 0}
    )
    assert histogram_quantile(0.25, empty_neg)[0] == pytest.approx(0.0)
    assert histogram_quantile(0.25, empty_neg.compact())[0] == pytest.approx(0.25)


def test_quantile_custom_buckets() -> None:
    h = H("{{schema:-53 count:10 sum:50 custom_values:[1 5 10] buckets:[2 4 3 1]}}")
    # Linear interpolation; the first bucket starts at 0 when its upper bound is positive.
    assert histogram_quantile(0.1, h)[0] == pytest.approx(0.5)
    assert histogram_quantile(0.4, h)[0] == pytest.approx(3.0)
    # In the +Inf bucket the answer is its lower bound.
    assert histogram_quantile(0.99, h)[0] == 10.0
    neg_first = H("{{schema:-53 count:2 custom_values:[-1 5] buckets:[1 1]}}")
    assert histogram_quantile(0.1, neg_first)[0] == -1.0


def test_quantile_with_nan_observations() -> None:
    # Count 5 but only 4 observations in buckets and a NaN sum: NaN observations.
    h = H("{{count:5 sum:NaN buckets:[1 2 1]}}")
    v, info = histogram_quantile(0.5, h)
    assert info == HistInfo.QUANTILE_NAN_SKEW and v > 0
    v, info = histogram_quantile(0.99, h)
    assert math.isnan(v) and info == HistInfo.QUANTILE_NAN_RESULT
    f, finfo = histogram_fraction(-math.inf, math.inf, h)
    assert f == pytest.approx(0.8) and finfo == HistInfo.FRACTION_NANS


def test_fraction_interpolation() -> None:
    h = H("{{schema:0 count:4 sum:5 buckets:[1 2 1]}}")
    assert histogram_fraction(1, 2, h) == (0.5, HistInfo.NONE)
    # Exponential interpolation inside (1,2]: sqrt(2) is half of the bucket.
    assert histogram_fraction(1, math.sqrt(2), h)[0] == pytest.approx(0.25)
    assert histogram_fraction(2, 1, h)[0] == 0.0
    assert math.isnan(histogram_fraction(math.nan, 1, h)[0])
    c = H("{{schema:-53 count:4 custom_values:[1 11] buckets:[1 2 1]}}")
    assert histogram_fraction(1, 6, c)[0] == pytest.approx(0.25)  # linear in (1,11]
    # A bucket spanning 0 is treated like the zero bucket: with only "positive" buckets its
    # lower bound becomes 0, so (-Inf,1] is interpolated as [0,1].
    assert histogram_fraction(-5, 0.5, c)[0] == pytest.approx(0.125)
    assert histogram_fraction(20, math.inf, c)[0] == pytest.approx(0.25)  # (11,+Inf] counts fully
    assert histogram_fraction(12, 20, c)[0] == pytest.approx(0.0)  # ...but is never interpolated
    n = H("{{schema:-53 count:4 custom_values:[-1 5] buckets:[1 2 1]}}")
    # No interpolation inside (-Inf,-1] (all of it counts as below -5) nor inside (5,+Inf]
    # (none of it counts as below 10): only the middle bucket is in [-5, 10].
    assert histogram_fraction(-5, 10, n)[0] == pytest.approx(0.5)


def test_stddev_and_stdvar() -> None:
    # Two observations in (1,2] and (2,4]: geometric midpoints sqrt(2) and sqrt(8), mean from sum.
    h = H("{{schema:0 count:2 sum:4 offset:1 buckets:[1 1]}}")
    m = 2.0
    want = ((math.sqrt(2) - m) ** 2 + (math.sqrt(8) - m) ** 2) / 2
    assert histogram_stdvar(h) == pytest.approx(want)
    assert histogram_stddev(h) == pytest.approx(math.sqrt(want))
    # Custom buckets use arithmetic midpoints; the zero bucket counts as 0.
    c = H("{{schema:-53 count:2 sum:6 custom_values:[2 4] buckets:[0 2]}}")
    assert histogram_stdvar(c) == pytest.approx(0.0)
    z = H("{{count:2 sum:0 z_bucket:2 z_bucket_w:1}}")
    assert histogram_stdvar(z) == 0.0
    assert math.isnan(histogram_stddev(H("{{}}")))


# ------------------------------------------------------------------------------ classic -> NHCB


def test_classic_to_nhcb() -> None:
    h = classic_to_nhcb({1.0: 2, 5.0: 5, math.inf: 7}, count=7, total=20)
    want = H("{{schema:-53 count:7 sum:20 custom_values:[1 5] buckets:[2 3 2]}}")
    assert promqltest_equal(want, h, True)
    assert h.schema == CUSTOM_BUCKETS_SCHEMA
    # Empty buckets are dropped (compacted); the count comes from +Inf when there is no _count.
    h2 = classic_to_nhcb({5.0: 1, 1.0: 1, 10.0: 3, math.inf: 3})
    assert h2.count == 3
    assert h2.positive_index.tolist() == [0, 2] and h2.positive.tolist() == [1, 2]
    # Without a +Inf bucket, it is added from the count.
    h3 = classic_to_nhcb({1.0: 2}, count=3)
    assert h3.custom_values is not None and h3.custom_values.tolist() == [1.0]
    assert h3.positive.tolist() == [2, 1]


@pytest.mark.parametrize(
    ("buckets", "count", "msg"),
    [
        ({1.0: 3, 2.0: 2}, None, "not cumulative"),
        ({1.0: -1}, None, "non-negative"),
        ({math.nan: 1}, None, "NaN"),
        ({1.0: 1, math.inf: 2}, 3.0, "count mismatch"),
        ({1.0: 1}, -1.0, "non-negative"),
    ],
)
def test_classic_to_nhcb_errors(buckets: dict[float, float], count: float | None, msg: str) -> None:
    with pytest.raises(NHCBConversionError, match=msg):
        classic_to_nhcb(buckets, count=count)


def test_classic_builder_first_value_per_bound_wins_and_sorts() -> None:
    b = ClassicHistogramBuilder()
    b.set_bucket_count(10, 5)
    b.set_bucket_count(1, 1)
    b.set_bucket_count(1, 4)  # ignored
    b.set_count(5)
    b.set_sum(12.5)
    h = b.convert()
    assert h.custom_values is not None and h.custom_values.tolist() == [1, 10]
    assert h.positive.tolist() == [1, 4] and h.sum == 12.5


def test_histogram_base_name() -> None:
    assert histogram_base_name("http_seconds_bucket") == ("bucket", "http_seconds")
    assert histogram_base_name("http_seconds_count") == ("count", "http_seconds")
    assert histogram_base_name("http_seconds_sum") == ("sum", "http_seconds")
    assert histogram_base_name("up") == ("", "up")


def _classic_series() -> list[tuple[tuple[tuple[str, str], ...], list[tuple[int, float]]]]:
    """histograms.test's ``testhistogram3`` load (``load_with_nhcb 5m``, ``0+Nx10``)."""

    def s(
        name: str, start: str, step: float, le: str | None = None
    ) -> tuple[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        labels = [("__name__", name), ("start", start)]
        if le is not None:
            labels.append(("le", le))
        return tuple(sorted(labels)), [(i * 300_000, step * i) for i in range(11)]

    b = "testhistogram3_bucket"
    return [
        s(b, "positive", 0, "0"),
        s(b, "positive", 5, "0.1"),
        s(b, "positive", 7, ".2"),
        s(b, "positive", 11, "1e0"),
        s(b, "positive", 11, "+Inf"),
        s("testhistogram3_sum", "positive", 33),
        s("testhistogram3_count", "positive", 11),
        s(b, "negative", 0, "-.25"),
        s(b, "negative", 1, "-.2"),
        s(b, "negative", 2, "-0.1"),
        s(b, "negative", 2, "0.3"),
        s(b, "negative", 2, "+Inf"),
        s("testhistogram3_sum", "negative", 8),
        s("testhistogram3_count", "negative", 2),
        (((("__name__", "other"),)), [(0, 1.0)]),
        ((("__name__", "x_bucket"), ("le", "NaN")), [(0, 1.0)]),
    ]


def test_nhcb_series_from_classic_matches_histograms_test() -> None:
    out = dict(nhcb_series_from_classic(_classic_series()))
    pos = (("__name__", "testhistogram3"), ("start", "positive"))
    neg = (("__name__", "testhistogram3"), ("start", "negative"))
    assert set(out) == {pos, neg}  # "other" is no histogram; an le of NaN is skipped
    assert [t for t, _ in out[pos]] == [i * 300_000 for i in range(11)]
    p = out[pos][10][1]  # at 50m
    n = out[neg][10][1]
    assert promqltest_equal(
        H("{{schema:-53 count:110 sum:330 custom_values:[0 0.1 0.2 1] offset:1 buckets:[50 20 40]}}"), p, True
    )
    # Expectations of histograms.test at 50m.
    assert (histogram_count(p), histogram_count(n)) == (110, 20)
    assert (histogram_avg(p), histogram_avg(n)) == (3, 4)
    assert almost_equal(histogram_stddev(p), 2.7435461458749795)
    assert almost_equal(histogram_stdvar(n), 17.5365625)
    assert almost_equal(histogram_fraction(0, 0.2, p)[0], 0.6363636363636364)
    assert histogram_fraction(0, 0.2, n)[0] == 0
    assert [histogram_quantile(q, p)[0] for q in (0, 0.25, 0.5)] == pytest.approx([0, 0.055, 0.125])
    assert [histogram_quantile(q, n)[0] for q in (0, 0.25, 0.5)] == pytest.approx([-0.25, -0.225, -0.2])


def test_nhcb_series_errors_and_go_float_parsing() -> None:
    with pytest.raises(NHCBConversionError, match="bucket label"):
        nhcb_series_from_classic([((("__name__", "a_bucket"),), [(0, 1.0)])])
    bad = [
        ((("__name__", "a_bucket"), ("le", "1")), [(0, 5.0)]),
        ((("__name__", "a_bucket"), ("le", "2")), [(0, 3.0)]),
    ]
    with pytest.raises(NHCBConversionError, match="not cumulative"):
        nhcb_series_from_classic(bad)
    odd = [
        ((("__name__", "a_bucket"), ("le", "0x1p-1")), [(0, 1.0)]),
        ((("__name__", "a_bucket"), ("le", "1_0")), [(0, 9.0)]),  # not a Go float: skipped
        ((("__name__", "a_bucket"), ("le", "+Inf")), [(0, 2.0)]),
    ]
    [(_, [(_, h)])] = nhcb_series_from_classic(odd)
    assert h.custom_values is not None and h.custom_values.tolist() == [0.5]
    assert h.count == 2


# ------------------------------------------------------------------------------ trim operators

# native_histograms.test evals of ``h </ x`` and ``h >/ x``: input, operator, operand, expected.
TRIM_CASES: list[tuple[str, str, str, str, str]] = [
    (
        "native_histograms.test:2044",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        ">/",
        "-Inf",
        "{{schema:0 sum:123.75 count:34 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
    ),
    (
        "native_histograms.test:2047",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        "</",
        "+Inf",
        "{{schema:0 sum:123.75 count:34 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
    ),
    (
        "native_histograms.test:2050",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        ">/",
        "+Inf",
        "{{schema:0 z_bucket_w:0.001}}",
    ),
    (
        "native_histograms.test:2053",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        "</",
        "-Inf",
        "{{schema:0 z_bucket_w:0.001}}",
    ),
    (
        "native_histograms.test:2056",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        ">/",
        "0",
        "{{schema:0 sum:120.20840280171308 count:30.5 z_bucket:0.5 z_bucket_w:0.001 buckets:[2 4 8 16]}}",
    ),
    (
        "native_histograms.test:2059",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        "</",
        "0",
        "{{schema:0 sum:-3.53578390593273768 count:3.5 z_bucket:0.5 z_bucket_w:0.001 n_buckets:[1 2]}}",
    ),
    (
        "native_histograms.test:2064",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        "</",
        "1.4142135624",
        "{{count:8 sum:0.2570938865989847 z_bucket:1 z_bucket_w:0.001 buckets:[2 2] n_buckets:[1 2]}}",
    ),
    (
        "native_histograms.test:2067",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        ">/",
        "1.4142135624",
        "{{count:26 sum:116.50067065070982 z_bucket_w:0.001 buckets:[0 2 8 16]}}",
    ),
    (
        "native_histograms.test:2074",
        "{{schema:2 count:28 sum:12.8286080906 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 4 7 3] n_buckets:[1 5 3 1]}}",
        "</",
        "1.13",
        "{{schema:2 count:13.410582181123704 sum:-9.385798726068233 z_bucket:1 z_bucket_w:0.001 buckets:[1 1.410582181123704] n_buckets:[1 5 3 1]}}",
    ),
    (
        "native_histograms.test:2077",
        "{{schema:2 count:28 sum:12.8286080906 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 4 7 3] n_buckets:[1 5 3 1]}}",
        ">/",
        "1.13",
        "{{schema:2 count:14.589417818876296 sum:22.168126492693734 z_bucket_w:0.001 offset:1 buckets:[0.589417818876296 4 7 3]}}",
    ),
    (
        "native_histograms.test:2080",
        "{{schema:2 count:28 sum:12.8286080906 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 4 7 3] n_buckets:[1 5 3 1]}}",
        ">/",
        "-1.3",
        "{{schema:2 count:25.54213947904476 sum:16.29588491217537 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 4 7 3] n_buckets:[1 5 1.54213947904476]}}",
    ),
    (
        "native_histograms.test:2083",
        "{{schema:2 count:28 sum:12.8286080906 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 4 7 3] n_buckets:[1 5 3 1]}}",
        "</",
        "-1.3",
        "{{schema:2 count:2.45786052095524 sum:-3.5189307983595066 z_bucket_w:0.001 n_offset:2 n_buckets:[1.45786052095524 1]}}",
    ),
    (
        "native_histograms.test:2087",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        "</",
        "2",
        "{{count:10 sum:3.5355339059327373 z_bucket:1 z_bucket_w:0.001 buckets:[2 4] n_buckets:[1 2]}}",
    ),
    (
        "native_histograms.test:2090",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        ">/",
        "2",
        "{{count:24 sum:113.13708498984761 z_bucket_w:0.001 offset:2 buckets:[8 16]}}",
    ),
    (
        "native_histograms.test:2093",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        ">/",
        "-1",
        "{{count:32 sum:119.50104602052653 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1]}}",
    ),
    (
        "native_histograms.test:2096",
        "{{count:34 sum:123.75 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}",
        "</",
        "-1",
        "{{count:2 sum:-2.8284271247461903 z_bucket_w:0.001 n_offset:1 n_buckets:[2]}}",
    ),
    (
        "native_histograms.test:2104",
        "{{count:12 sum:8.021067811865475 z_bucket:2 z_bucket_w:0.5 buckets:[10]}}",
        ">/",
        "0.5",
        "{{schema:0 count:10 sum:7.0710678118654755 z_bucket:0 z_bucket_w:0.5 buckets:[10]}}",
    ),
    (
        "native_histograms.test:2107",
        "{{count:12 sum:8.021067811865475 z_bucket:2 z_bucket_w:0.5 buckets:[10]}}",
        ">/",
        "0.1",
        "{{schema:0 count:11.6 sum:7.551067811865476 z_bucket:1.6 z_bucket_w:0.5 buckets:[10]}}",
    ),
    (
        "native_histograms.test:2110",
        "{{count:12 sum:8.021067811865475 z_bucket:2 z_bucket_w:0.5 buckets:[10]}}",
        ">/",
        "0",
        "{{schema:0 sum:8.0210678118654755 count:12 z_bucket:2 z_bucket_w:0.5 buckets:[10]}}",
    ),
    (
        "native_histograms.test:2113",
        "{{count:12 sum:8.021067811865475 z_bucket:2 z_bucket_w:0.5 buckets:[10]}}",
        "</",
        "0.5",
        "{{schema:0 count:2 sum:0.5 z_bucket:2 z_bucket_w:0.5}}",
    ),
    (
        "native_histograms.test:2116",
        "{{count:12 sum:8.021067811865475 z_bucket:2 z_bucket_w:0.5 buckets:[10]}}",
        "</",
        "0.1",
        "{{schema:0 count:0.4 sum:0.02 z_bucket:0.4 z_bucket_w:0.5}}",
    ),
    (
        "native_histograms.test:2119",
        "{{count:12 sum:8.021067811865475 z_bucket:2 z_bucket_w:0.5 buckets:[10]}}",
        "</",
        "0",
        "{{schema:0 z_bucket_w:0.5}}",
    ),
    (
        "native_histograms.test:2127",
        "{{count:12 sum:-8.021067811865475 z_bucket:2 z_bucket_w:0.5 n_buckets:[10]}}",
        "</",
        "-0.5",
        "{{schema:0 count:10 sum:-7.0710678118654755 z_bucket:0 z_bucket_w:0.5 n_buckets:[10]}}",
    ),
    (
        "native_histograms.test:2130",
        "{{count:12 sum:-8.021067811865475 z_bucket:2 z_bucket_w:0.5 n_buckets:[10]}}",
        "</",
        "-0.1",
        "{{schema:0 count:11.6 sum:-7.551067811865476 z_bucket:1.6 z_bucket_w:0.5 n_buckets:[10]}}",
    ),
    (
        "native_histograms.test:2133",
        "{{count:12 sum:-8.021067811865475 z_bucket:2 z_bucket_w:0.5 n_buckets:[10]}}",
        "</",
        "0",
        "{{schema:0 sum:-8.0210678118654755 count:12 z_bucket:2 z_bucket_w:0.5 n_buckets:[10]}}",
    ),
    (
        "native_histograms.test:2136",
        "{{count:12 sum:-8.021067811865475 z_bucket:2 z_bucket_w:0.5 n_buckets:[10]}}",
        ">/",
        "-0.5",
        "{{schema:0 count:2 sum:-0.5 z_bucket:2 z_bucket_w:0.5}}",
    ),
    (
        "native_histograms.test:2139",
        "{{count:12 sum:-8.021067811865475 z_bucket:2 z_bucket_w:0.5 n_buckets:[10]}}",
        ">/",
        "-0.1",
        "{{schema:0 count:0.4 sum:-0.02 z_bucket:0.4 z_bucket_w:0.5}}",
    ),
    (
        "native_histograms.test:2142",
        "{{count:12 sum:-8.021067811865475 z_bucket:2 z_bucket_w:0.5 n_buckets:[10]}}",
        ">/",
        "0",
        "{{schema:0 z_bucket_w:0.5}}",
    ),
    (
        "native_histograms.test:2150",
        "{{count:5 z_bucket:5 z_bucket_w:0.1}}",
        ">/",
        "0.1",
        "{{schema:0 count:0 sum:0 z_bucket:0 z_bucket_w:0.1 }}",
    ),
    (
        "native_histograms.test:2153",
        "{{count:5 z_bucket:5 z_bucket_w:0.1}}",
        "</",
        "0.1",
        "{{schema:0 count:5 sum:0 z_bucket:5 z_bucket_w:0.1 }}",
    ),
    (
        "native_histograms.test:2156",
        "{{count:5 z_bucket:5 z_bucket_w:0.1}}",
        ">/",
        "0.05",
        "{{schema:0 count:1.25 sum:0.09375 z_bucket:1.25 z_bucket_w:0.1 }}",
    ),
    (
        "native_histograms.test:2159",
        "{{count:5 z_bucket:5 z_bucket_w:0.1}}",
        "</",
        "0.05",
        "{{schema:0 count:3.75 sum:-0.09375 z_bucket:3.75 z_bucket_w:0.1 }}",
    ),
    (
        "native_histograms.test:2162",
        "{{count:5 z_bucket:5 z_bucket_w:0.1}}",
        ">/",
        "0",
        "{{schema:0 count:2.5 sum:0.125 z_bucket:2.5 z_bucket_w:0.1 }}",
    ),
    (
        "native_histograms.test:2165",
        "{{count:5 z_bucket:5 z_bucket_w:0.1}}",
        "</",
        "0",
        "{{schema:0 count:2.5 sum:-0.125 z_bucket:2.5 z_bucket_w:0.1 }}",
    ),
    (
        "native_histograms.test:2168",
        "{{count:5 z_bucket:5 z_bucket_w:0.1}}",
        ">/",
        "-0.05",
        "{{schema:0 count:3.75 sum:0.09375 z_bucket:3.75 z_bucket_w:0.1 }}",
    ),
    (
        "native_histograms.test:2171",
        "{{count:5 z_bucket:5 z_bucket_w:0.1}}",
        "</",
        "-0.05",
        "{{schema:0 count:1.25 sum:-0.09375 z_bucket:1.25 z_bucket_w:0.1 }}",
    ),
    (
        "native_histograms.test:2174",
        "{{count:5 z_bucket:5 z_bucket_w:0.1}}",
        "</",
        "-0.1",
        "{{schema:0 count:0 sum:0 z_bucket:0 z_bucket_w:0.1 }}",
    ),
    (
        "native_histograms.test:2177",
        "{{count:5 z_bucket:5 z_bucket_w:0.1}}",
        ">/",
        "-0.1",
        "{{schema:0 count:5 sum:0 z_bucket:5 z_bucket_w:0.1 }}",
    ),
    (
        "native_histograms.test:2185",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        "</",
        "15",
        "{{schema:-53 count:11 sum:97.5 custom_values:[5 10 15 20] buckets:[1 6 4]}}",
    ),
    (
        "native_histograms.test:2188",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        ">/",
        "15",
        "{{schema:-53 count:4 sum:72.5 custom_values:[5 10 15 20] offset:3 buckets:[3 1]}}",
    ),
    (
        "native_histograms.test:2192",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        "</",
        "13",
        "{{schema:-53 count:9.4 sum:75.1 custom_values:[5 10 15 20] buckets:[1 6 2.4]}}",
    ),
    (
        "native_histograms.test:2195",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        ">/",
        "13",
        "{{schema:-53 count:5.6 sum:94.9 custom_values:[5 10 15 20] offset:2 buckets:[1.6 3 1]}}",
    ),
    (
        "native_histograms.test:2198",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        "</",
        "7.5",
        "{{schema:-53 count:4 sum:21.25 custom_values:[5 10 15 20] buckets:[1 3]}}",
    ),
    (
        "native_histograms.test:2202",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        "</",
        "50",
        "{{schema:-53 count:14 sum:150.0 custom_values:[5 10 15 20] buckets:[1 6 4 3]}}",
    ),
    (
        "native_histograms.test:2205",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        "</",
        "-Inf",
        "{{schema:-53 custom_values:[5 10 15 20]}}",
    ),
    (
        "native_histograms.test:2208",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        ">/",
        "+Inf",
        "{{schema:-53 custom_values:[5 10 15 20]}}",
    ),
    (
        "native_histograms.test:2211",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        "</",
        "+Inf",
        "{{schema:-53 sum:172.5 count:15 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
    ),
    (
        "native_histograms.test:2214",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        ">/",
        "-Inf",
        "{{schema:-53 sum:172.5 count:15 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
    ),
    (
        "native_histograms.test:2218",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        ">/",
        "0",
        "{{schema:-53 sum:172.5 count:15 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
    ),
    (
        "native_histograms.test:2221",
        "{{schema:-53 count:15 sum:172.5 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}",
        "</",
        "0",
        "{{schema:-53 custom_values:[5 10 15 20]}}",
    ),
    (
        "native_histograms.test:2229",
        "{{schema:-53 count:15 sum:172.5 custom_values:[-10 5 10 15 20] buckets:[2 1 6 4 3 1]}}",
        "</",
        "2",
        "{{schema:-53 count:2.8 sum:-23.2 custom_values:[-10 5 10 15 20] buckets:[2 0.8]}}",
    ),
    (
        "native_histograms.test:2232",
        "{{schema:-53 count:15 sum:172.5 custom_values:[-10 5 10 15 20] buckets:[2 1 6 4 3 1]}}",
        "</",
        "-4",
        "{{schema:-53 count:2.4 sum:-22.8 custom_values:[-10 5 10 15 20] buckets:[2 0.4]}}",
    ),
    (
        "native_histograms.test:2235",
        "{{schema:-53 count:15 sum:172.5 custom_values:[-10 5 10 15 20] buckets:[2 1 6 4 3 1]}}",
        "</",
        "-15",
        "{{schema:-53 count:2 sum:-30 custom_values:[-10 5 10 15 20] buckets:[2]}}",
    ),
    (
        "native_histograms.test:2243",
        "{{sum:-6.75 z_bucket:5 z_bucket_w:0.01 buckets:[2 3] n_buckets:[1 2 3]}}",
        "</",
        "-0.005",
        "{{count:7.25 sum:-12.03019028017131 z_bucket:1.25 z_bucket_w:0.01 n_buckets:[1 2 3]}}",
    ),
    (
        "native_histograms.test:2246",
        "{{sum:-6.75 z_bucket:5 z_bucket_w:0.01 buckets:[2 3] n_buckets:[1 2 3]}}",
        ">/",
        "0",
        "{{count:7.5 sum:5.669354249492381 z_bucket:2.5 z_bucket_w:0.01 buckets:[2 3]}}",
    ),
    (
        "native_histograms.test:2254",
        "{{schema:-53 count:100 sum:100 custom_values:[] buckets:[100]}}",
        "</",
        "10.0",
        "{{schema:-53 sum:0.0 count:0 buckets:[0]}}",
    ),
    (
        "native_histograms.test:2258",
        "{{schema:-53 count:100 sum:100 custom_values:[] buckets:[100]}}",
        ">/",
        "10.0",
        "{{schema:-53 sum:0.0 count:0 buckets:[0]}}",
    ),
    (
        "native_histograms.test:2262",
        "{{schema:-53 count:100 sum:100 custom_values:[] buckets:[100]}}",
        "</",
        "+Inf",
        "{{schema:-53 sum:100 count:100 buckets:[100]}}",
    ),
    (
        "native_histograms.test:2266",
        "{{schema:-53 count:100 sum:100 custom_values:[] buckets:[100]}}",
        ">/",
        "+Inf",
        "{{schema:-53 sum:0 count:0 buckets:[0]}}",
    ),
    (
        "native_histograms.test:2270",
        "{{schema:-53 count:100 sum:100 custom_values:[] buckets:[100]}}",
        ">/",
        "-Inf",
        "{{schema:-53 sum:100 count:100 buckets:[100]}}",
    ),
    (
        "native_histograms.test:2274",
        "{{schema:-53 count:100 sum:100 custom_values:[] buckets:[100]}}",
        "</",
        "-Inf",
        "{{schema:-53 sum:0 count:0 buckets:[0]}}",
    ),
    (
        "native_histograms.test:2282",
        "{{schema:-53 count:100 sum:33 custom_values:[0] buckets:[1 100]}}",
        "</",
        "10.0",
        "{{schema:-53 sum:0.0 count:1 custom_values:[0] buckets:[1 0]}}",
    ),
    (
        "native_histograms.test:2286",
        "{{schema:-53 count:100 sum:33 custom_values:[0] buckets:[1 100]}}",
        "</",
        "0.0",
        "{{schema:-53 sum:0.0 count:1 custom_values:[0] buckets:[1 0]}}",
    ),
    (
        "native_histograms.test:2290",
        "{{schema:-53 count:100 sum:33 custom_values:[0] buckets:[1 100]}}",
        "</",
        "-10.0",
        "{{schema:-53 sum:-10.0 count:1 custom_values:[0] buckets:[1 0]}}",
    ),
    (
        "native_histograms.test:2294",
        "{{schema:-53 count:100 sum:33 custom_values:[0] buckets:[1 100]}}",
        ">/",
        "-10.0",
        "{{schema:-53 sum:0.0 count:100 custom_values:[0] buckets:[0 100]}}",
    ),
    (
        "native_histograms.test:2298",
        "{{schema:-53 count:100 sum:33 custom_values:[0] buckets:[1 100]}}",
        ">/",
        "0.0",
        "{{schema:-53 sum:0.0 count:100 custom_values:[0] buckets:[0 100]}}",
    ),
    (
        "native_histograms.test:2302",
        "{{schema:-53 count:100 sum:33 custom_values:[0] buckets:[1 100]}}",
        ">/",
        "10.0",
        "{{schema:-53 sum:1000.0 count:100 custom_values:[0] buckets:[0 100]}}",
    ),
    (
        "native_histograms.test:2310",
        "{{schema:-53 count:101 sum:33 custom_values:[5] buckets:[1 100]}}",
        "</",
        "10.0",
        "{{schema:-53 sum:2.5 count:1 custom_values:[5] buckets:[1 0]}}",
    ),
    (
        "native_histograms.test:2314",
        "{{schema:-53 count:101 sum:33 custom_values:[5] buckets:[1 100]}}",
        "</",
        "2.0",
        "{{schema:-53 sum:0.4 count:0.4 custom_values:[5] buckets:[0.4 0]}}",
    ),
    (
        "native_histograms.test:2318",
        "{{schema:-53 count:101 sum:33 custom_values:[5] buckets:[1 100]}}",
        "</",
        "0.0",
        "{{schema:-53 custom_values:[5]}}",
    ),
    (
        "native_histograms.test:2322",
        "{{schema:-53 count:101 sum:33 custom_values:[5] buckets:[1 100]}}",
        "</",
        "-10.0",
        "{{schema:-53 sum:0.0 count:0 custom_values:[5] buckets:[0 0]}}",
    ),
    (
        "native_histograms.test:2326",
        "{{schema:-53 count:101 sum:33 custom_values:[5] buckets:[1 100]}}",
        ">/",
        "-10.0",
        "{{schema:-53 sum:500.0 count:100 custom_values:[5] buckets:[0 100]}}",
    ),
    (
        "native_histograms.test:2330",
        "{{schema:-53 count:101 sum:33 custom_values:[5] buckets:[1 100]}}",
        ">/",
        "0.0",
        "{{schema:-53 sum:33.0 count:101 custom_values:[5] buckets:[1 100]}}",
    ),
    (
        "native_histograms.test:2334",
        "{{schema:-53 count:101 sum:33 custom_values:[5] buckets:[1 100]}}",
        ">/",
        "2.0",
        "{{schema:-53 sum:502.1 count:100.6 custom_values:[5] buckets:[0.6 100]}}",
    ),
    (
        "native_histograms.test:2338",
        "{{schema:-53 count:101 sum:33 custom_values:[5] buckets:[1 100]}}",
        ">/",
        "10.0",
        "{{schema:-53 sum:1000.0 count:100 custom_values:[5] buckets:[0 100]}}",
    ),
    (
        "native_histograms.test:2346",
        "{{schema:-53 count:101 sum:33 custom_values:[-5] buckets:[1 100]}}",
        "</",
        "10.0",
        "{{schema:-53 sum:-5.0 count:1 custom_values:[-5] buckets:[1 0]}}",
    ),
    (
        "native_histograms.test:2350",
        "{{schema:-53 count:101 sum:33 custom_values:[-5] buckets:[1 100]}}",
        "</",
        "0.0",
        "{{schema:-53 sum:-5 count:1 custom_values:[-5] buckets:[1 0]}}",
    ),
    (
        "native_histograms.test:2354",
        "{{schema:-53 count:101 sum:33 custom_values:[-5] buckets:[1 100]}}",
        "</",
        "-2.0",
        "{{schema:-53 sum:-5.0 count:1 custom_values:[-5] buckets:[1 0]}}",
    ),
    (
        "native_histograms.test:2358",
        "{{schema:-53 count:101 sum:33 custom_values:[-5] buckets:[1 100]}}",
        "</",
        "-10.0",
        "{{schema:-53 sum:-10.0 count:1 custom_values:[-5] buckets:[1 0]}}",
    ),
    (
        "native_histograms.test:2362",
        "{{schema:-53 count:101 sum:33 custom_values:[-5] buckets:[1 100]}}",
        ">/",
        "-10.0",
        "{{schema:-53 sum:-500 count:100 custom_values:[-5] buckets:[0 100]}}",
    ),
    (
        "native_histograms.test:2366",
        "{{schema:-53 count:101 sum:33 custom_values:[-5] buckets:[1 100]}}",
        ">/",
        "-2.0",
        "{{schema:-53 sum:-200 count:100 custom_values:[-5] buckets:[0 100]}}",
    ),
    (
        "native_histograms.test:2370",
        "{{schema:-53 count:101 sum:33 custom_values:[-5] buckets:[1 100]}}",
        ">/",
        "0.0",
        "{{schema:-53 sum:0.0 count:100 custom_values:[-5] buckets:[0 100]}}",
    ),
    (
        "native_histograms.test:2374",
        "{{schema:-53 count:101 sum:33 custom_values:[-5] buckets:[1 100]}}",
        ">/",
        "10.0",
        "{{schema:-53 sum:1000.0 count:100 custom_values:[-5] buckets:[0 100]}}",
    ),
    ("native_histograms.test:2401", "{{}}", "</", "-Inf", "{{}}"),
    (
        "native_histograms.test:2401",
        "{{schema:-53 custom_values:[-3 2]}}",
        "</",
        "-Inf",
        "{{schema:-53 custom_values:[-3 2]}}",
    ),
    ("native_histograms.test:2405", "{{}}", "</", "-5", "{{}}"),
    (
        "native_histograms.test:2405",
        "{{schema:-53 custom_values:[-3 2]}}",
        "</",
        "-5",
        "{{schema:-53 custom_values:[-3 2]}}",
    ),
    ("native_histograms.test:2409", "{{}}", "</", "0", "{{}}"),
    (
        "native_histograms.test:2409",
        "{{schema:-53 custom_values:[-3 2]}}",
        "</",
        "0",
        "{{schema:-53 custom_values:[-3 2]}}",
    ),
    ("native_histograms.test:2413", "{{}}", "</", "5", "{{}}"),
    (
        "native_histograms.test:2413",
        "{{schema:-53 custom_values:[-3 2]}}",
        "</",
        "5",
        "{{schema:-53 custom_values:[-3 2]}}",
    ),
    ("native_histograms.test:2417", "{{}}", "</", "+Inf", "{{}}"),
    (
        "native_histograms.test:2417",
        "{{schema:-53 custom_values:[-3 2]}}",
        "</",
        "+Inf",
        "{{schema:-53 custom_values:[-3 2]}}",
    ),
    ("native_histograms.test:2421", "{{}}", ">/", "-Inf", "{{}}"),
    (
        "native_histograms.test:2421",
        "{{schema:-53 custom_values:[-3 2]}}",
        ">/",
        "-Inf",
        "{{schema:-53 custom_values:[-3 2]}}",
    ),
    ("native_histograms.test:2425", "{{}}", ">/", "-5", "{{}}"),
    (
        "native_histograms.test:2425",
        "{{schema:-53 custom_values:[-3 2]}}",
        ">/",
        "-5",
        "{{schema:-53 custom_values:[-3 2]}}",
    ),
    ("native_histograms.test:2429", "{{}}", ">/", "0", "{{}}"),
    (
        "native_histograms.test:2429",
        "{{schema:-53 custom_values:[-3 2]}}",
        ">/",
        "0",
        "{{schema:-53 custom_values:[-3 2]}}",
    ),
    ("native_histograms.test:2433", "{{}}", ">/", "5", "{{}}"),
    (
        "native_histograms.test:2433",
        "{{schema:-53 custom_values:[-3 2]}}",
        ">/",
        "5",
        "{{schema:-53 custom_values:[-3 2]}}",
    ),
    ("native_histograms.test:2437", "{{}}", ">/", "+Inf", "{{}}"),
    (
        "native_histograms.test:2437",
        "{{schema:-53 custom_values:[-3 2]}}",
        ">/",
        "+Inf",
        "{{schema:-53 custom_values:[-3 2]}}",
    ),
]


@pytest.mark.parametrize(
    ("where", "literal", "op", "rhs", "expected"), TRIM_CASES, ids=[c[0] for c in TRIM_CASES]
)
def test_trim_conformance(where: str, literal: str, op: str, rhs: str, expected: str) -> None:
    got = trim_buckets(H(literal), _num(rhs), op == "</")
    p = parse_histogram(expected)
    assert promqltest_equal(p.histogram, got, p.counter_reset_hint_set), f"{where}: {got!r} != {expected}"


def test_trim_keeps_untouched_histogram() -> None:
    h = H("{{count:3 sum:100 buckets:[1 2]}}")
    assert trim_buckets(h, 10, True) is h  # nothing cut: the original sum stays
    t = trim_buckets(h, 1, True)
    assert t.count == 1 and t.sum == pytest.approx(math.sqrt(0.5))  # sum from bucket midpoints
