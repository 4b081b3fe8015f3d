"""Reads Tally's Parquet lake with DuckDB, independently of Tally: the current state of
time_logs (each id's latest version, deleted rows dropped, soft-deleted ones left out) as
per-org [count, sum of minutes, sum of versions], and how many change rows appear more than
once across files. Prints one JSON object.

usage: python3 lake.py <store root>
"""

import json
import sys

import duckdb

root = sys.argv[1]
files = f"{root}/_analytics/lake/time_logs/**/*.parquet"
con = duckdb.connect()
source = f"read_parquet('{files}', union_by_name = true, hive_partitioning = false)"
totals = con.execute(
    f"""
    with latest as (
      select * from {source}
      qualify row_number() over (
        partition by id order by _commit_lsn desc, _tx_ordinal desc) = 1
    )
    select org_id, count(*), sum(duration_minutes), sum(version)
      from latest
     where not _deleted and deleted_at is null
     group by org_id
    """
).fetchall()
duplicates = con.execute(
    f"select count(*) - count(distinct (id, _commit_lsn, _tx_ordinal)) from {source}"
).fetchone()[0]
print(
    json.dumps(
        {
            "totals": {org: [count, int(minutes), int(versions)] for org, count, minutes, versions in totals},
            "duplicates": duplicates,
        }
    )
)
