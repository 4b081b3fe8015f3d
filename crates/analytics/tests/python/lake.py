"""Reads Tally's Parquet lake with DuckDB, independently of Tally: the current state of
time_logs (each id's latest version, deleted rows dropped, soft-deleted ones left out) as
per-org [count, sum of minutes, sum of versions], and how many change rows appear more than
once across files. Prints one JSON object.

usage: python3 lake.py <store root>
       python3 lake.py <store root> <table> <column>
           the current rows of <table> ({"id": ..., "<column>": ...}) and the Parquet types
           <column> has across the table's files
"""

import json
import sys

import duckdb

root = sys.argv[1]
con = duckdb.connect()

if len(sys.argv) == 4:
    table, column = sys.argv[2], sys.argv[3]
    files = f"{root}/_analytics/lake/{table}/**/*.parquet"
    rows = con.execute(
        f"""
        select id::text, "{column}"::text from (
          select * from read_parquet('{files}', union_by_name = true, hive_partitioning = false)
          qualify row_number() over (
            partition by id order by _commit_lsn desc, _tx_ordinal desc) = 1
        ) where not _deleted order by 1
        """
    ).fetchall()
    types = con.execute(
        f"select distinct type from parquet_schema('{files}') where name = '{column}' order by 1"
    ).fetchall()
    print(json.dumps({"rows": {i: v for i, v in rows}, "types": [t for (t,) in types]}))
    sys.exit(0)

files = f"{root}/_analytics/lake/time_logs/**/*.parquet"
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
