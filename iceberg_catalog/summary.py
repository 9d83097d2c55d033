"""Prints a short summary of the published gold tables, read through PyIceberg
(the same catalog Spark wrote and Trino serves)."""
from __future__ import annotations

import pyarrow.compute as pc

from iceberg_catalog import config


def _rows(catalog, table: str, sort: list[tuple[str, str]] | None = None, limit: int | None = None) -> list[dict]:
    arrow = catalog.load_table(table).scan().to_arrow()
    if sort:
        arrow = arrow.sort_by(sort)
    return arrow.slice(0, limit).to_pylist() if limit else arrow.to_pylist()


def main() -> None:
    catalog = config.load_pyiceberg_catalog()
    print("== gold tables ==")
    for ns, table in sorted(catalog.list_tables("gold")):
        print(f"  gold.{table:<30} {catalog.load_table(f'gold.{table}').scan().to_arrow().num_rows:>9} rows")
    daily = _rows(catalog, "gold.daily_engagement", [("event_date", "ascending")])
    if daily:
        last = daily[-1]
        print(f"\nDAU/MAU on {last['event_date']}: dau={last['dau']} mau_30d={last['mau_30d']} "
              f"stickiness={last['stickiness']:.3f}; {len(daily)} days, {sum(d['events'] for d in daily)} events")
    print("\np95 page load by app version (slowest 5):")
    for r in _rows(catalog, "gold.app_version_latency_overall", [("p95_ms", "descending")], 5):
        print(f"  {r['app_version']:<10} events={r['events']:<7} p50={r['p50_ms']:.0f} p95={r['p95_ms']:.0f} p99={r['p99_ms']:.0f}")
    print("\nlatest anomalies:")
    for r in _rows(catalog, "gold.usage_anomalies", [("event_date", "descending"), ("z_score", "descending")], 5):
        print(f"  {r['event_date']} {r['dimension']}={r['dimension_value']} {r['metric']}={r['value']:.1f} "
              f"z={r['z_score']:.1f} {r['severity']}")
    sessions = catalog.load_table("gold.sessions").scan().to_arrow()
    if sessions.num_rows:
        bounce = pc.mean(sessions["is_bounce"].cast("int8")).as_py()
        print(f"\nsessions: {sessions.num_rows}, bounce rate {bounce:.3f}, "
              f"median actions {pc.approximate_median(sessions['actions']).as_py():.1f}")
    power = catalog.load_table("gold.power_users").scan().to_arrow()
    print(f"power users: {power.num_rows}")
    assoc = _rows(catalog, "gold.device_latency_association")
    if assoc:
        a = assoc[0]
        print(f"device vs page load: eta^2={a['eta_squared']:.4f} Kruskal H={a['kruskal_h']:.1f} p={a['kruskal_p_value']:.3g}")


if __name__ == "__main__":
    main()
