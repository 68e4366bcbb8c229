"""Synthetic call records for benchmarks: deterministic (seeded), thousands of tenants, 2017-2024.

python benchmarks/generate.py OUT_DIR [--calls N] [--tenants T] [--seed S] [--numbers-per-base K]
writes OUT_DIR/calls.csv (our layout), OUT_DIR/tenants.csv and OUT_DIR/licenses.csv.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

# A realistic mix: mostly Zone A fixed and mobile numbers, some outside Zone A, a few premium and toll-free.
DESTINATIONS = [
    (30, ["+33142685300", "+33612345678", "+4930901820", "+442071234567", "+447911123456", "+31201234567"]),
    (25, ["+14155552671", "+12125551234", "+14165550123", "+17875551234", "+61212345678", "+81312345678"]),
    (8, ["+263242700000", "+2348012345678", "+68221234", "+97142345678", "+5491112345678"]),
    (2, ["+449012345678", "+19005551234"]),
    (3, ["+18005551234", "+18885550199"]),
]
COUNTRIES = ["US", "GB", "DE", "FR", "KR", "ZW", "JP", "BR"]
CALL_TYPES = [(70, "conf_out"), (20, "user_out"), (10, "conf_in")]


def weighted(rng: random.Random, table: list[tuple[int, list[str]]] | list[tuple[int, str]]) -> object:
    total = sum(weight for weight, _ in table)
    pick = rng.uniform(0, total)
    for weight, value in table:
        pick -= weight
        if pick <= 0:
            return value
    return table[-1][1]


def generate(out: Path, calls: int, tenants: int, seed: int, numbers_per_base: int = 1) -> None:
    """`numbers_per_base` > 1 varies the last four digits of each base number among that many values, so that
    most calls dial a number no earlier call dialed (classifying a new number costs about 12 us)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    tenant_ids = [f"t{index:05d}" for index in range(tenants)]
    with (out / "tenants.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tenant_id", "valid_from", "country", "communications_credits"])
        for tenant in tenant_ids:
            writer.writerow([tenant, "2016-01-01", rng.choice(COUNTRIES), "true" if rng.random() < 0.85 else "false"])
    with (out / "licenses.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tenant_id", "valid_from", "sku", "usage_location", "purchased", "assigned"])
        for tenant in tenant_ids:
            users = rng.randint(5, 400)
            for sku in ("audio_conferencing", "communications_credits", "calling_plan_domestic"):
                writer.writerow([tenant, "2016-01-01", sku, "US", users + rng.randint(0, 20), users])
            writer.writerow([tenant, "2020-09-16", "us_ca_dial_out", "US", users // 10, users // 10])
            writer.writerow([tenant, "2021-01-01", "audio_conferencing", "US", users + 30, users + 10])
    start = 1_483_228_800  # 2017-01-01
    span = 1_735_689_600 - start  # to 2025-01-01
    with (out / "calls.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["call_id", "tenant_id", "start", "duration_seconds", "call_type", "organizer_id",
                         "organizer_usage_location", "organizer_licenses", "destination"])
        import datetime as dt

        for index in range(calls):
            instant = dt.datetime.fromtimestamp(start + rng.randrange(span), dt.UTC)
            call_type = weighted(rng, CALL_TYPES)
            licenses = "audio_conferencing;communications_credits"
            if call_type == "user_out":
                licenses = "calling_plan_domestic;communications_credits"
            elif rng.random() < 0.05:
                licenses = "audio_conferencing;us_ca_dial_out"
            writer.writerow([f"c{index:08d}", rng.choice(tenant_ids), instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             int(rng.expovariate(1 / 600)), call_type, f"u{rng.randrange(1000)}", "US", licenses,
                             dialed(rng, numbers_per_base)])


def dialed(rng: random.Random, numbers_per_base: int) -> str:
    number: str = rng.choice(weighted(rng, DESTINATIONS))  # type: ignore[arg-type]
    if numbers_per_base > 1:  # drawn only then, so that the default file stays the same
        number = f"{number[:-4]}{rng.randrange(numbers_per_base) % 10_000:04d}"
    return number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20181)
    parser.add_argument("--numbers-per-base", type=int, default=1, help="distinct numbers per base number (<= 10,000)")
    args = parser.parse_args()
    generate(args.out, args.calls, args.tenants, args.seed, args.numbers_per_base)


if __name__ == "__main__":
    main()
