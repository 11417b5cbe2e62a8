# PySpark from PyPI in its own cached venv: spark-submit --master local[N] for tests.
# Sourced by hack/services.sh. Install only (local mode needs no server).

PYSPARK_HOME="$HEADWATER_CACHE/pyspark-$PYSPARK_VERSION"

pyspark_install() {
  [[ -x "$PYSPARK_HOME/venv/bin/spark-submit" && -e "$PYSPARK_HOME/.complete" ]] && return 0
  local t0=$SECONDS
  rm -rf "$PYSPARK_HOME"
  log "pyspark $PYSPARK_VERSION: creating venv and installing from PyPI"
  python3 -m venv "$PYSPARK_HOME/venv"
  # pyspark's only hard dependency is py4j; pandas/pyarrow extras are not needed for
  # spark-submit of JVM or plain PySpark jobs, so keep the venv lean.
  "$PYSPARK_HOME/venv/bin/pip" install -q --no-cache-dir "pyspark==$PYSPARK_VERSION"
  touch "$PYSPARK_HOME/.complete"
  log "pyspark $PYSPARK_VERSION: installed in $((SECONDS - t0))s ($(du -sh "$PYSPARK_HOME" | cut -f1))"
}

pyspark_status() { [[ -e "$PYSPARK_HOME/.complete" ]]; }
pyspark_env() {
  local home
  home="$(echo "$PYSPARK_HOME"/venv/lib/python3*/site-packages/pyspark)"
  cat <<ENV
SPARK_SUBMIT=$PYSPARK_HOME/venv/bin/spark-submit
HEADWATER_SPARK_PYTHON=$PYSPARK_HOME/venv/bin/python
HEADWATER_SPARK_HOME=$home
ENV
}
