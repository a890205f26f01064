"""Reads one Iceberg table with Spark 3.5 (Iceberg runtime), PyIceberg and DuckDB over the same
SQL catalog and prints, per engine, the row count and an order-independent checksum of every value
(values rendered the same way whatever engine produced them), as one JSON object.

    python engines.py --catalog-db catalog.db --warehouse warehouse --table ns.events
    python engines.py --catalog-uri postgres://user@127.0.0.1:5432/db --warehouse … --table …
    python engines.py --catalog-uri http://127.0.0.1:8181 --warehouse … --table …   (a REST catalog)

With --icefall-ipc, our own scan (an Arrow IPC file) is summarized the same way as "icefall".
With --count-filter, every engine counts the rows matching that SQL predicate through its own
Iceberg scan (pruning files by partition values and column bounds): "filtered" maps each
predicate to each engine's count.
With --spark-sql, Spark runs those statements (DML, `CALL` procedures) before anything is read;
their results are in "spark_sql". `--engines ''` reads nothing (statements only).
With --serve (the tests' way), it answers requests, each a JSON array of these arguments on one
line of stdin, with one line of JSON each, and keeps one Spark JVM for all of them.
"""

import argparse
import datetime
import decimal
import glob
import hashlib
import json
import os
import sqlite3
import re
import sys
import time
import urllib.parse
import uuid

# Engines hand a uuid over as text, as a UUID object or as 16 bytes: all become 32 hex digits.
UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def canonical(value):
    """One text form per value, whatever engine produced it."""
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, str) and UUID_TEXT.match(value):
        return value.replace("-", "")
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        # A map comes as a list of (key, value) pairs: order does not matter there.
        if value and all(isinstance(e, tuple) and len(e) == 2 for e in value):
            return sorted([[canonical(k), canonical(v)] for k, v in value], key=json.dumps)
        return [canonical(v) for v in value]
    return value


def summarize(table, columns):
    """Row count and checksum of a pyarrow table, over `columns` in that order."""
    rows = []
    for row in table.to_pylist():
        # A column an engine lacks changes the checksum instead of vanishing from it.
        rows.append(json.dumps([canonical(row.get(c, "<missing column>")) for c in columns], sort_keys=True))
    rows.sort()
    digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return {"rows": len(rows), "checksum": digest[:16], "columns": table.column_names, "first": rows[0] if rows else None}


def postgres_parts(uri):
    """(host:port/db, user, password) of a `postgres://` or `postgresql://` URI."""
    parsed = urllib.parse.urlparse(uri)
    return f"{parsed.hostname}:{parsed.port or 5432}{parsed.path}", parsed.username, parsed.password


def sqlalchemy_uri(args):
    if args.catalog_db:
        return f"sqlite:///{os.path.abspath(args.catalog_db)}"
    address, user, password = postgres_parts(args.catalog_uri)
    credentials = user + (f":{password}" if password else "") + "@" if user else ""
    return f"postgresql+psycopg2://{credentials}{address}"


def is_rest(args):
    return bool(args.catalog_uri) and args.catalog_uri.startswith(("http://", "https://"))


def metadata_location(args, namespace, name):
    if is_rest(args):
        import urllib.request

        path = f"/v1/namespaces/{urllib.parse.quote(namespace)}/tables/{urllib.parse.quote(name)}"
        with urllib.request.urlopen(args.catalog_uri.rstrip("/") + path) as response:
            return json.load(response)["metadata-location"]
    if args.catalog_db:
        con = sqlite3.connect(args.catalog_db)
        row = con.execute(
            "select metadata_location from iceberg_tables where catalog_name = ? and table_namespace = ? and table_name = ?",
            (args.catalog_name, namespace, name),
        ).fetchone()
        return row[0]
    import sqlalchemy

    engine = sqlalchemy.create_engine(sqlalchemy_uri(args))
    with engine.connect() as con:
        return con.execute(
            sqlalchemy.text(
                "select metadata_location from iceberg_tables where catalog_name = :c and table_namespace = :n and table_name = :t"
            ),
            {"c": args.catalog_name, "n": namespace, "t": name},
        ).scalar_one()


def pyiceberg_table(args):
    from pyiceberg.catalog.sql import SqlCatalog

    if is_rest(args):
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog(args.catalog_name, uri=args.catalog_uri).load_table(args.table)
    catalog = SqlCatalog(args.catalog_name, uri=sqlalchemy_uri(args), warehouse=f"file://{os.path.abspath(args.warehouse)}")
    return catalog.load_table(args.table)


def read_pyiceberg(args):
    return pyiceberg_table(args).scan().to_arrow()


def duckdb_scan(args):
    """A DuckDB connection with the iceberg extension, and the table's metadata location."""
    import duckdb

    namespace, name = args.table.rsplit(".", 1)
    location = metadata_location(args, namespace, name)
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    # Extensions ship in their wheels; load by path, avro first (iceberg needs it).
    for ext in ("avro", "iceberg"):
        module = __import__(f"duckdb_extension_{ext}")
        path = glob.glob(os.path.join(os.path.dirname(module.__file__), "**", "*.duckdb_extension"), recursive=True)[0]
        con.execute(f"LOAD '{path}'")
    con.execute("SET TimeZone = 'UTC'")
    return con, location


def read_duckdb(args):
    con, location = duckdb_scan(args)
    result = con.execute("select * from iceberg_scan(?)", [location])
    return result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.fetch_arrow_table()


_ROOT_SPARK = None


def root_spark():
    """The process's one Spark session (a JVM started once): the Iceberg runtime, its SQL
    extensions and both JDBC drivers; each request gets its own session on top of it."""
    global _ROOT_SPARK
    if _ROOT_SPARK is None:
        from pyspark.sql import SparkSession

        # Spark 3.5 runs on Java 8/11/17; prefer the 17 JDK when nothing is chosen.
        if not os.environ.get("JAVA_HOME") and os.path.isdir("/usr/lib/jvm/java-17-openjdk-amd64"):
            os.environ["JAVA_HOME"] = "/usr/lib/jvm/java-17-openjdk-amd64"
        site = os.path.join(sys.prefix, "lib", "python*", "site-packages", "**", "iceberg-spark-runtime-3.5_2.12-*.jar")
        jars = glob.glob(site, recursive=True)[:1]
        jars += [j for j in ("/usr/share/java/sqlite-jdbc.jar", "/usr/share/java/postgresql.jar") if os.path.exists(j)]
        _ROOT_SPARK = (
            SparkSession.builder.master("local[2]")
            .config("spark.jars", ",".join(jars))
            .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate()
        )
        _ROOT_SPARK.sparkContext.setLogLevel("ERROR")
    return _ROOT_SPARK


def catalog_conf(args):
    """Spark's settings for the request's catalog (`spark.sql.catalog.<name>.*`)."""
    c = f"spark.sql.catalog.{args.catalog_name}"
    conf = {c: "org.apache.iceberg.spark.SparkCatalog", f"{c}.cache-enabled": "false"}
    if is_rest(args):
        conf.update({f"{c}.type": "rest", f"{c}.uri": args.catalog_uri})
        return conf
    if args.catalog_db:
        uri, user, password = f"jdbc:sqlite:{os.path.abspath(args.catalog_db)}", None, None
    else:
        address, user, password = postgres_parts(args.catalog_uri)
        uri = f"jdbc:postgresql://{address}"
    conf.update(
        {
            f"{c}.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
            f"{c}.uri": uri,
            f"{c}.jdbc.schema-version": "V1",
            f"{c}.warehouse": f"file://{os.path.abspath(args.warehouse)}",
        }
    )
    if user:
        conf[f"{c}.jdbc.user"] = user
    if password:
        conf[f"{c}.jdbc.password"] = password
    return conf


def spark_session(args):
    """A fresh session (its own SQL settings, catalogs and temp views) on the shared JVM, with
    the request's catalog."""
    spark = root_spark().newSession()
    for key, value in catalog_conf(args).items():
        spark.conf.set(key, value)
    return spark


def run_spark_sql(spark, statements):
    """Runs each statement; returns its rows as text, per statement."""
    out = []
    for statement in statements:
        started = time.time()
        rows = spark.sql(statement).collect()
        out.append({"sql": statement, "rows": [[str(v) for v in row] for row in rows], "seconds": round(time.time() - started, 2)})
    return out


def read_spark(args, spark):
    import pyarrow as pa

    batches = spark.table(f"{args.catalog_name}.{args.table}")._collect_as_arrow()
    return pa.Table.from_batches(batches) if batches else pa.table({})


def filtered_count(args, engine, spark, predicate):
    """Rows matching `predicate` through `engine`'s own Iceberg scan, so a file pruned by a wrong
    bound shows as a missing row."""
    if engine == "spark":
        return spark().sql(f"select count(*) from {args.catalog_name}.{args.table} where {predicate}").collect()[0][0]
    if engine == "pyiceberg":
        return pyiceberg_table(args).scan(row_filter=predicate).to_arrow().num_rows
    if engine == "duckdb":
        con, location = duckdb_scan(args)
        return con.execute(f"select count(*) from iceberg_scan(?) where {predicate}", [location]).fetchone()[0]
    raise SystemExit(f"unknown engine {engine}")


def column_stats(args, spark):
    """Per column, the distinct count in the statistics Spark's optimizer attaches to a scan of
    the table (with the cost-based optimizer on, Iceberg reports the `ndv` of the current
    snapshot's statistics file)."""
    import re

    spark.sql("SET spark.sql.cbo.enabled=true")
    plan = spark.table(f"{args.catalog_name}.{args.table}")._jdf.queryExecution().optimizedPlan()
    text = plan.stats().attributeStats().toString()
    return {name: int(count) for name, count in re.findall(r"(\w+)#\d+\w* -> ColumnStat\(Some\((\d+)\)", text)}


def spark_checks(args, spark, filters):
    """Filtered counts through Iceberg (file pruning by partition values and column bounds)
    against the same filters on a copy of the rows that has no Iceberg metadata; and time
    travel to every snapshot."""
    name = f"{args.catalog_name}.{args.table}"
    # Materialized rows, cut off from the Iceberg scan: filters on them prune nothing.
    spark.table(name).localCheckpoint(eager=True).createOrReplaceTempView("plain_copy")
    out = {"filters": {}, "snapshots": []}
    for predicate in filters:
        pruned = spark.sql(f"select count(*) from {name} where {predicate}").collect()[0][0]
        full = spark.sql(f"select count(*) from plain_copy where {predicate}").collect()[0][0]
        out["filters"][predicate] = [pruned, full]
    for row in spark.sql(f"select snapshot_id, operation, summary from {name}.snapshots order by committed_at").collect():
        summary = dict(row["summary"])
        as_of = spark.sql(f"select count(*) from {name} version as of {row['snapshot_id']}").collect()[0][0]
        out["snapshots"].append(
            {"id": row["snapshot_id"], "operation": row["operation"], "total_records": int(summary.get("total-records", -1)),
             "position_deletes": int(summary.get("total-position-deletes", 0)),
             "equality_deletes": int(summary.get("total-equality-deletes", 0)),
             "count_as_of": as_of, "writer": summary.get("icefall.writer-id"), "offsets": summary.get("icefall.offsets")}
        )
    return out


def parser():
    p = argparse.ArgumentParser()
    p.add_argument("--catalog-db")
    p.add_argument("--catalog-uri")
    p.add_argument("--catalog-name", default="icefall")
    p.add_argument("--warehouse", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--engines", default="pyiceberg,duckdb,spark")
    p.add_argument("--icefall-ipc", help="our own scan of the table, as an Arrow IPC file")
    p.add_argument("--spark-filter", action="append", default=[], help="a SQL predicate to count with and without pruning")
    p.add_argument("--spark-sql", action="append", default=[], help="a Spark SQL statement to run before reading")
    p.add_argument("--count-filter", action="append", default=[], help="a SQL predicate every engine counts")
    p.add_argument("--plan-filter", action="append", default=[], help="a PyIceberg row filter whose planned files are counted")
    p.add_argument("--column-stats", action="store_true", help="the distinct counts Spark's cost-based optimizer gets from the table")
    return p


def close_spark(args, spark):
    """Closes the request's Iceberg catalog, so no JDBC connection (SQLite locks) outlives the
    request in a long-lived server, and drops the request's temp view."""
    if spark is None:
        return
    try:
        spark.catalog.dropTempView("plain_copy")
        manager = spark._jsparkSession.sessionState().catalogManager()
        if manager.isCatalogRegistered(args.catalog_name):
            manager.catalog(args.catalog_name).icebergCatalog().close()
    except Exception as e:  # noqa: BLE001 - a failed clean-up must not hide the request's own error
        print(f"engines.py: closing the request's catalog: {e}", file=sys.stderr)


class LazySpark:
    """The request's Spark session, started on first use."""

    def __init__(self, args):
        self.args, self.session = args, None

    def __call__(self):
        self.session = self.session or spark_session(self.args)
        return self.session


def report(args):
    spark = LazySpark(args)
    try:
        return read_all(args, spark)
    finally:
        close_spark(args, spark.session)


def read_all(args, spark):
    out = {}
    columns = None
    if args.spark_sql:
        out["spark_sql"] = run_spark_sql(spark(), args.spark_sql)
    if args.column_stats:
        out["column_stats"] = column_stats(args, spark())
    if args.plan_filter:
        table = pyiceberg_table(args)
        total = len(list(table.scan().plan_files()))
        out["planned"] = {f: {"files": len(list(table.scan(row_filter=f).plan_files())), "total": total} for f in args.plan_filter}
    for engine in filter(None, args.engines.split(",")):
        started = time.time()
        if engine == "pyiceberg":
            table = read_pyiceberg(args)
        elif engine == "duckdb":
            table = read_duckdb(args)
        elif engine == "spark":
            table = read_spark(args, spark())
            out["spark_checks"] = spark_checks(args, spark(), args.spark_filter)
        else:
            raise SystemExit(f"unknown engine {engine}")
        columns = columns or table.column_names
        for predicate in args.count_filter:
            out.setdefault("filtered", {}).setdefault(predicate, {})[engine] = filtered_count(args, engine, spark, predicate)
        out[engine] = summarize(table, columns)
        out[engine]["seconds"] = round(time.time() - started, 2)
    if args.icefall_ipc:
        import pyarrow.ipc

        with pyarrow.ipc.open_file(args.icefall_ipc) as f:
            out["icefall"] = summarize(f.read_all(), columns)
    return out


def serve():
    """Answers requests until stdin closes: each line is a JSON array of arguments, each answer
    one line of JSON, `{"report": …}` or `{"error": traceback}`. The JVM starts once, so a test
    binary pays Spark's start-up once per server instead of once per reading."""
    import traceback

    answers = os.fdopen(os.dup(1), "w")
    # Only answers go to the real stdout: anything else printed (the JVM's own output) goes to stderr.
    os.dup2(2, 1)
    for line in sys.stdin:
        try:
            answer = {"report": report(parser().parse_args(json.loads(line)))}
        except BaseException:  # noqa: BLE001 - argparse exits; every failure is the caller's to report
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main():
    if sys.argv[1:] == ["--serve"]:
        serve()
        return
    json.dump(report(parser().parse_args()), sys.stdout, indent=1)


if __name__ == "__main__":
    main()
