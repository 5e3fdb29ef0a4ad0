"""Scale-out mode (GRIDASSETS_MODE=scaleout): the same asset graph with its steps on Celery workers
(Redis broker), the Dagster instance in PostgreSQL (deploy/scaleout/dagster.yaml) and the Delta
warehouse.

- `executor.py`: the graph's executor in this mode (dagster-celery's, plus the run-start work
  every run worker does) and the Celery settings the executor and the workers share.
- `worker.py`: the Celery app a worker serves (`celery -A gridassets.scaleout.worker worker`).
- `cluster.py`: PostgreSQL, Redis, workers and the daemon as local processes, for one machine.
- `backfill.py`: a backfill of daily partitions through the backfill daemon, and its report.
- `demo.py`: `make scaleout-demo`.
"""
